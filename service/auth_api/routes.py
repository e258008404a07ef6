"""The auth API's endpoints: register, log in, refresh, log out, me (JSON only)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import trio
from quart import Blueprint, Response, current_app, request
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio

from ..accounts.directory import (
    Account,
    Directory,
    EmailTakenError,
    InvalidUserError,
    TooManyAttemptsError,
    directory,
)
from ..platform.database import Database, open_database
from ..platform.responses import json_response
from ..platform.settings import Settings
from .access_tokens import AccessTokens, InvalidAccessTokenError
from .refresh_store import PgRefreshStore
from .refresh_tokens import InvalidRefreshTokenError, RefreshTokens

__all__ = ["ACCESS_LIFETIME_S", "REFRESH_LIFETIME_S", "create_blueprint"]

logger = logging.getLogger("service.auth_api.routes")

#: Default lifetimes: an access token 30 s, a refresh token 30 days.
ACCESS_LIFETIME_S = 30.0
REFRESH_LIFETIME_S = 30 * 24 * 3600.0
#: How often expired refresh records are deleted.
PURGE_EVERY_S = 3600.0
#: A client refused for too many failed log-ins should wait this long.
RETRY_AFTER_S = 300


def error(code: str, detail: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """The API's error body: ``{"error": "<code>", "detail": "..."}``."""
    return json_response({"error": code, "detail": detail}, status, headers)


class ApiError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def unauthorized(detail: str) -> ApiError:
    return ApiError(error("unauthorized", detail, 401, {"WWW-Authenticate": 'Bearer realm="api"'}))


@dataclass
class _State:
    refresh: RefreshTokens | None = None
    stopping: trio.Event = field(default_factory=trio.Event)
    closed: trio.Event = field(default_factory=trio.Event)


def create_blueprint(settings: Settings, *, secret_key: str) -> Blueprint:
    """The API under ``/api``. Every path works with and without its trailing slash."""
    blueprint = Blueprint("auth_api", __name__, url_prefix="/api")
    access = AccessTokens(secret_key)
    state = _State()

    async def keep_open(*, task_status: trio.TaskStatus[Database]) -> None:
        assert settings.database_url is not None
        try:
            async with open_database(settings.database_url) as database, trio.open_nursery() as n:
                state.refresh = RefreshTokens(PgRefreshStore(database))
                n.start_soon(purge_forever, state.refresh)
                task_status.started(database)
                await state.stopping.wait()
                n.cancel_scope.cancel()
        finally:
            state.closed.set()

    @blueprint.before_app_serving
    async def open_store() -> None:
        if settings.database_url is None:
            return
        state.stopping, state.closed = trio.Event(), trio.Event()
        await cast(QuartTrio, current_app).nursery.start(keep_open)

    @blueprint.after_app_serving
    async def close_store() -> None:
        if state.refresh is None:
            return
        state.refresh = None
        state.stopping.set()
        await state.closed.wait()

    def route(path: str, methods: list[str]) -> Callable[[Any], Any]:
        def register(view: Callable[[], Awaitable[ResponseReturnValue]]) -> Any:
            async def guarded() -> ResponseReturnValue:
                try:
                    return await view()
                except ApiError as failed:
                    return failed.response

            guarded.__name__ = view.__name__
            blueprint.add_url_rule(path, view_func=guarded, methods=methods)
            blueprint.add_url_rule(
                path.rstrip("/"), view_func=guarded, methods=methods, endpoint=view.__name__ + "_"
            )
            return guarded

        return register

    def users() -> Directory:
        found = directory()
        if found is None or state.refresh is None:
            raise ApiError(error("unavailable", "the API needs a database (DATABASE_URL)", 503))
        return found

    def refresh_tokens() -> RefreshTokens:
        if state.refresh is None:
            raise ApiError(error("unavailable", "the API needs a database (DATABASE_URL)", 503))
        return state.refresh

    async def pair(user_id: int, family_token: str | None = None) -> dict[str, str]:
        return {
            "access_token": access.issue(user_id, ACCESS_LIFETIME_S),
            "refresh_token": family_token
            or await refresh_tokens().issue(user_id, REFRESH_LIFETIME_S),
        }

    async def authenticated() -> Account:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("an access token is needed: Authorization: Bearer <token>")
        try:
            claims = access.verify(token.strip())
        except InvalidAccessTokenError as exc:
            raise unauthorized(f"invalid access token: {exc}") from None
        account = await users().get(claims.user_id)
        if account is None:
            raise unauthorized("the token's user no longer exists")
        return account

    @route("/register/", ["POST"])
    async def register() -> ResponseReturnValue:
        body = await json_body({"email", "password", "username"}, required={"email", "password"})
        try:
            account = await users().register(
                body["email"], body["password"], body.get("username", "")
            )
        except InvalidUserError as exc:
            raise ApiError(error("invalid", str(exc), 400)) from None
        except EmailTakenError:
            raise ApiError(error("email_taken", "an account with this email exists", 409)) from None
        return json_response({"id": account.id, "email": account.email}, 201)

    @route("/login/", ["POST"])
    async def login() -> ResponseReturnValue:
        body = await json_body({"email", "password"}, required={"email", "password"})
        try:
            account = await users().authenticate(
                body["email"], body["password"], request.remote_addr or "-"
            )
        except TooManyAttemptsError:
            raise ApiError(
                error(
                    "too_many_attempts",
                    "too many failed log-ins: try again later",
                    429,
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
            ) from None
        if account is None:
            raise ApiError(error("bad_credentials", "wrong email or password", 401))
        return json_response(await pair(account.id))

    @route("/refresh/", ["POST"])
    async def refresh() -> ResponseReturnValue:
        body = await json_body({"refresh_token"}, required={"refresh_token"})
        try:
            user_id, new_token = await refresh_tokens().rotate(
                body["refresh_token"], REFRESH_LIFETIME_S
            )
        except InvalidRefreshTokenError as exc:
            raise unauthorized(str(exc)) from None
        return json_response(await pair(user_id, new_token))

    @route("/logout/", ["POST"])
    async def logout() -> ResponseReturnValue:
        body = await json_body({"refresh_token"}, required={"refresh_token"})
        try:
            await refresh_tokens().revoke(body["refresh_token"])
        except InvalidRefreshTokenError as exc:
            raise unauthorized(str(exc)) from None
        return json_response({"success": "User logged out."})

    @route("/me/", ["GET", "PUT"])
    async def me() -> ResponseReturnValue:
        account = await authenticated()
        if request.method == "PUT":
            body = await json_body({"email", "username"}, required=set())
            if not body:
                raise ApiError(error("invalid", "give an email and/or a username", 400))
            try:
                account = await users().update_profile(
                    account, email=body.get("email"), username=body.get("username")
                )
            except InvalidUserError as exc:
                raise ApiError(error("invalid", str(exc), 400)) from None
            except EmailTakenError:
                raise ApiError(
                    error("email_taken", "another account has this email", 409)
                ) from None
            except PermissionError as exc:
                raise unauthorized(str(exc)) from None
        return json_response(
            {"id": account.id, "username": account.username, "email": account.email}
        )

    return blueprint


async def json_body(allowed: set[str], *, required: set[str]) -> dict[str, str]:
    """The request's JSON object of string fields: 415 if not JSON, 400 if malformed."""
    if not request.is_json:
        raise ApiError(error("unsupported_media_type", "send Content-Type: application/json", 415))
    body = await request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(error("invalid", "the body must be a JSON object", 400))
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(error("invalid", f"unknown fields: {', '.join(sorted(unknown))}", 400))
    missing = required - set(body)
    if missing:
        raise ApiError(error("invalid", f"missing fields: {', '.join(sorted(missing))}", 400))
    wrong = [key for key, value in body.items() if not isinstance(value, str)]
    if wrong:
        raise ApiError(error("invalid", f"must be strings: {', '.join(sorted(wrong))}", 400))
    return cast(dict[str, str], body)


async def purge_forever(refresh: RefreshTokens) -> None:
    """Delete expired refresh records now and every hour (errors logged, never fatal)."""
    while True:
        try:
            purged = await refresh.purge_expired()
            if purged:
                logger.info("purged %d expired refresh tokens", purged)
        except Exception:
            logger.exception("purging expired refresh tokens failed")
        await trio.sleep(PURGE_EVERY_S)
