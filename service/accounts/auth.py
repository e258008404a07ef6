"""Who is logged in: the seam other capabilities use (``current_user``, ``require_user``).

A session cookie (quart-auth, signed) holds ``"<user id>:<session version>"``. Every
request loads that user afresh, so a deleted user's session stops working at once, a
demoted admin loses the rights on the very next request, and a new password (which bumps
the version) ends the other sessions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar
from urllib.parse import urlencode

from quart import abort, g, redirect, request
from quart_auth import AuthUser
from quart_auth import current_user as _auth_user
from werkzeug.wrappers import Response as WerkzeugResponse

from .store import Account, UserStore

__all__ = ["auth_id_of", "current_user", "require_admin", "require_user"]

P = ParamSpec("P")
R = TypeVar("R")

#: Set by the accounts blueprint when it starts: the store the seam reads users from.
STORE_KEY = "accounts_store"


def auth_id_of(account: Account) -> str:
    """What a session remembers of its user."""
    return f"{account.id}:{account.session_version}"


async def current_user() -> Account | None:
    """The logged-in user of this request, or ``None`` (anonymous, or a stale session)."""
    if "account" in g:
        cached: Account | None = g.account
        return cached
    account = await _load()
    g.account = account
    return account


async def _load() -> Account | None:
    auth_id = _auth_user.auth_id
    store: UserStore | None = g.get(STORE_KEY)
    if not auth_id or store is None:
        return None
    user_id, _, version = str(auth_id).partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    account = await store.get(int(user_id))
    if account is None or account.session_version != int(version):
        return None
    return account


def login_redirect() -> WerkzeugResponse:
    """To the log-in page, coming back here afterwards."""
    target = request.full_path.rstrip("?") if request.query_string else request.path
    return redirect(f"/login?{urlencode({'next': target})}")


def require_user(
    view: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | WerkzeugResponse]]:
    """A page for logged-in users: anyone else is sent to ``/login?next=<this page>``."""

    @wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R | WerkzeugResponse:
        if await current_user() is None:
            return login_redirect()
        return await view(*args, **kwargs)

    return guarded


def require_admin(
    view: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | WerkzeugResponse]]:
    """A page for admins: anonymous users log in first, other users get 403."""

    @wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R | WerkzeugResponse:
        account = await current_user()
        if account is None:
            return login_redirect()
        if not account.is_admin:
            abort(403, "This page is for admins.")
        return await view(*args, **kwargs)

    return guarded


def new_auth_user(account: Account) -> AuthUser:
    return AuthUser(auth_id_of(account))
