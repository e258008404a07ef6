"""The seam through which other capabilities (the task API) authenticate a request by the
auth API's access token: ``Authorization: Bearer <access token>``."""

from __future__ import annotations

from quart import current_app, request

from ..accounts.directory import Account, directory
from .access_tokens import AccessTokens, InvalidAccessTokenError

__all__ = [
    "ACCESS_TOKENS_KEY",
    "INVALID_TOKEN",
    "NO_TOKEN",
    "Account",
    "BearerError",
    "bearer_account",
]

#: Where the auth API's blueprint leaves its token verifier, in ``app.extensions``.
ACCESS_TOKENS_KEY = "auth_api.access_tokens"

#: A 401's ``WWW-Authenticate`` when the request carried no access token (RFC 6750 3.1:
#: then no error code) ...
NO_TOKEN = {"WWW-Authenticate": 'Bearer realm="api"'}
#: ... and when it carried one that is bad: expired, forged, or its user gone.
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'}


class BearerError(Exception):
    """The request is not authenticated: ``status`` 401 (with ``detail`` saying why, and
    ``headers`` the ``WWW-Authenticate`` to answer with), or 503 when there is no user
    database."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


async def bearer_account() -> Account:
    """The user whose valid access token the request carries, or :class:`BearerError`."""
    users = directory()
    access: AccessTokens | None = current_app.extensions.get(ACCESS_TOKENS_KEY)
    if users is None or access is None:
        raise BearerError(503, "the API needs a database (DATABASE_URL)")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError(401, "an access token is needed: Authorization: Bearer <token>", NO_TOKEN)
    try:
        claims = access.verify(token.strip())
    except InvalidAccessTokenError as exc:
        raise BearerError(401, f"invalid access token: {exc}", INVALID_TOKEN) from None
    account = await users.get(claims.user_id)
    if account is None:
        raise BearerError(401, "the token's user no longer exists", INVALID_TOKEN)
    return account
