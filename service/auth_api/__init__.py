"""The auth API capability: JSON endpoints under ``/api`` (``routes.py``: register, log in,
refresh, log out, read and change one's profile) for the accounts' users. Access tokens are
JWTs verified without the database (``access_tokens.py``); refresh tokens are single use,
rotated, with reuse detection (``refresh_tokens.py``, no I/O, over a store Protocol with an
in-memory fake; ``refresh_store.py`` on PostgreSQL). Their lifetimes are edited by admins on
``/admin/settings`` (``lifetimes.py``). Other capabilities authenticate a request through
one seam, ``bearer``. See docs/auth-api.md."""
