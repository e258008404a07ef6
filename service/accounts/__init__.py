"""The accounts capability: registered users and the user-admin web app. Server-rendered
pages (``views.py``: log-in, registration, the users list, profiles, edit, delete with
confirmation, a raw-SQL report) over users kept with the SQLAlchemy ORM (``store.py``,
``models.py``), with argon2id passwords, one stored form of every email, CSRF-protected
forms and log-in limits shared across workers; the ``users`` commands (fake users, loading
a users file) and the first start's seeding. Other capabilities use two seams only:
``auth`` (``current_user``, ``require_user``, ``require_admin``) and ``directory`` (register,
authenticate, read and change users under the same rules). See docs/accounts.md."""
