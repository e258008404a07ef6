"""The auth API's endpoints: register, log in, refresh, log out, me (JSON only)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import trio
from quart import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
)
from quart.typing import ResponseReturnValue
from quart_schema import document_request, document_response, security_scheme
from wtforms import StringField

from ..accounts.auth import require_admin
from ..accounts.directory import (
    Account,
    Directory,
    EmailTakenError,
    InvalidUserError,
    TooManyAttemptsError,
    directory,
    on_credentials_revoked,
)
from ..platform.api_routes import ApiError, api_route
from ..platform.api_routes import api_error as error
from ..platform.database import Database
from ..platform.forms import CsrfForm, csrf_meta
from ..platform.json_body import read_json_object
from ..platform.lifespan import WhileServing, background_tasks, hold_while_serving
from ..platform.profile_fields import profile_fields
from ..platform.responses import json_response
from ..platform.settings import Settings
from .access_tokens import AccessTokens
from .bearer import ACCESS_TOKENS_KEY, INVALID_TOKEN, BearerError, bearer_account
from .lifetimes import ACCESS, REFRESH, LifetimeError, Lifetimes, LifetimesStore, parse
from .refresh_store import PgRefreshStore, revoke_user_families
from .refresh_tokens import InvalidRefreshTokenError, RefreshTokens
from .schemas import (
    ApiErrorBody,
    Credentials,
    LoggedOut,
    Me,
    MeChange,
    RefreshBody,
    Registered,
    Registration,
    TokenPair,
)

__all__ = ["create_blueprint"]

logger = logging.getLogger("service.auth_api.routes")

#: How often expired refresh records are deleted.
PURGE_EVERY_S = 3600.0
#: How often each worker reads the lifetimes an admin may have changed.
RELOAD_S = 2.0


class SettingsForm(CsrfForm):
    """The admins' settings form (field names: ``access``, ``refresh``), with a CSRF token."""

    access = StringField("Access token lifetime")
    refresh = StringField("Refresh token lifetime")


def unauthorized(detail: str, headers: dict[str, str] | None = None) -> ApiError:
    """A 401 ``unauthorized``. A bad refresh token (unknown, malformed, spent, revoked,
    expired, its user gone) gets it too, with ``INVALID_TOKEN``, as a bad access token does:
    401 is this API's contract, where RFC 6749 5.2 would answer 400 ``invalid_grant``."""
    return ApiError(error("unauthorized", detail, 401, headers))


@dataclass
class _State:
    refresh: RefreshTokens | None = None
    lifetimes_store: LifetimesStore | None = None
    #: This worker's copy, reloaded every RELOAD_S: an admin's change reaches every worker.
    lifetimes: Lifetimes = field(default_factory=Lifetimes)


def create_blueprint(
    settings: Settings, *, database: WhileServing[Database], secret_key: str
) -> Blueprint:
    """The API under ``/api`` (every path works with and without its trailing slash), and
    the admins' page of its settings, ``/admin/settings``, on the worker's application
    ``database`` (the platform's); without one (no ``DATABASE_URL``) they answer 503."""
    blueprint = Blueprint("auth_api", __name__, template_folder="templates")
    access = AccessTokens(secret_key, leeway_s=settings.access_token_leeway_s)
    state = _State()
    # Other capabilities check access tokens through .bearer, with this verifier.
    blueprint.record_once(lambda setup: setup.app.extensions.update({ACCESS_TOKENS_KEY: access}))
    # A new password or a demotion (accounts) ends the user's API log-ins in the same commit.
    blueprint.record_once(lambda setup: on_credentials_revoked(setup.app, revoke_user_families))

    @asynccontextmanager
    async def tokens_while_serving() -> AsyncIterator[None]:
        opened = database()
        if opened is None:
            yield
            return
        async with background_tasks() as nursery:
            state.refresh = RefreshTokens(
                PgRefreshStore(opened), reuse_grace_s=settings.refresh_reuse_grace_s
            )
            state.lifetimes_store = LifetimesStore(opened)
            state.lifetimes = await state.lifetimes_store.load()
            nursery.start_soon(purge_forever, state.refresh)
            nursery.start_soon(reload_forever, state)
            try:
                yield
            finally:
                state.refresh = None

    hold_while_serving(blueprint, tokens_while_serving, name="the auth API's store")

    def route(path: str, methods: list[str]) -> Callable[[Any], Any]:
        return api_route(blueprint, path, methods)

    def users() -> Directory:
        found = directory()
        if found is None or state.refresh is None:
            raise ApiError(error("unavailable", "the API needs a database (DATABASE_URL)", 503))
        return found

    def refresh_tokens() -> RefreshTokens:
        if state.refresh is None:
            raise ApiError(error("unavailable", "the API needs a database (DATABASE_URL)", 503))
        return state.refresh

    def pair(user_id: int, refresh_token: str) -> dict[str, str | int]:
        """A token response (RFC 6749 5.1): ``expires_in`` is the access token's lifetime."""
        lifetime_s = state.lifetimes.access_s
        return {
            "access_token": access.issue(user_id, lifetime_s),
            "token_type": "Bearer",
            "expires_in": access.seconds(lifetime_s),
            "refresh_token": refresh_token,
        }

    async def authenticated() -> Account:
        try:
            return await bearer_account()
        except BearerError as exc:
            if exc.status == 401:
                raise unauthorized(exc.detail, exc.headers) from None
            raise ApiError(error("unavailable", exc.detail, exc.status)) from None

    @route("/api/register/", ["POST"])
    @document_request(Registration)
    @document_response(Registered, 201)
    @document_response(ApiErrorBody, 400)
    @document_response(ApiErrorBody, 409)
    @document_response(ApiErrorBody, 429)
    async def register() -> ResponseReturnValue:
        body = await json_body({"email", "password", "username"}, required={"email", "password"})
        try:
            account = await users().register(
                body["email"],
                body["password"],
                body.get("username", ""),
                client=request.remote_addr or "-",
            )
        except TooManyAttemptsError as exc:
            raise ApiError(
                error(
                    "too_many_attempts",
                    "too many registrations from this address: try again later",
                    429,
                    {"Retry-After": exc.retry_after},
                )
            ) from None
        except InvalidUserError as exc:
            raise ApiError(error("invalid", str(exc), 400)) from None
        except EmailTakenError:
            raise ApiError(error("email_taken", "an account with this email exists", 409)) from None
        return json_response({"id": account.id, "email": account.email}, 201)

    @route("/api/login/", ["POST"])
    @document_request(Credentials)
    @document_response(TokenPair, 200)
    @document_response(ApiErrorBody, 401)
    @document_response(ApiErrorBody, 429)
    async def login() -> ResponseReturnValue:
        body = await json_body({"email", "password"}, required={"email", "password"})
        try:
            account = await users().authenticate(
                body["email"], body["password"], request.remote_addr or "-"
            )
        except InvalidUserError as exc:
            raise ApiError(error("invalid", str(exc), 400)) from None
        except TooManyAttemptsError as exc:
            raise ApiError(
                error(
                    "too_many_attempts",
                    "too many failed log-ins: try again later",
                    429,
                    {"Retry-After": exc.retry_after},
                )
            ) from None
        if account is None:
            raise ApiError(error("bad_credentials", "wrong email or password", 401))
        try:
            # The password checked must still be the user's when the log-in is stored: a
            # new password committed since revoked the user's tokens; this one would outlive it.
            refresh_token = await refresh_tokens().issue(
                account.id, state.lifetimes.refresh_s, password_hash=account.password_hash
            )
        except InvalidRefreshTokenError as exc:  # deleted, or a new password, meanwhile
            raise unauthorized(str(exc)) from None
        return json_response(pair(account.id, refresh_token))

    @route("/api/refresh/", ["POST"])
    @document_request(RefreshBody)
    @document_response(TokenPair, 200)
    @document_response(ApiErrorBody, 401)
    async def refresh() -> ResponseReturnValue:
        body = await json_body({"refresh_token"}, required={"refresh_token"})
        try:
            user_id, new_token = await refresh_tokens().rotate(
                body["refresh_token"], state.lifetimes.refresh_s
            )
        except InvalidRefreshTokenError as exc:
            raise unauthorized(str(exc), INVALID_TOKEN) from None
        return json_response(pair(user_id, new_token))

    @route("/api/logout/", ["POST"])
    @document_request(RefreshBody)
    @document_response(LoggedOut, 200)
    @document_response(ApiErrorBody, 401)
    async def logout() -> ResponseReturnValue:
        body = await json_body({"refresh_token"}, required={"refresh_token"})
        try:
            await refresh_tokens().revoke(body["refresh_token"])
        except InvalidRefreshTokenError as exc:
            raise unauthorized(str(exc), INVALID_TOKEN) from None
        return json_response({"success": "User logged out."})

    @route("/api/me/", ["GET", "PUT"])
    @security_scheme([{"bearer": []}])
    @document_request(MeChange)
    @document_response(Me, 200)
    @document_response(ApiErrorBody, 401)
    @document_response(ApiErrorBody, 409)
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
            except PermissionError as exc:  # the token's user changed their password meanwhile
                raise unauthorized(str(exc), INVALID_TOKEN) from None
        return json_response(
            {
                "id": account.id,
                "username": account.username,
                "email": account.email,
                **await profile_fields(account.id),
            }
        )

    @blueprint.route("/admin/settings", methods=["GET", "POST"])
    @require_admin
    async def admin_settings() -> ResponseReturnValue:
        """The admins' page of the token lifetimes (validated, units shown)."""
        if state.lifetimes_store is None:
            abort(503, "The settings need a database (DATABASE_URL).")
        form = SettingsForm(await request.form, meta=csrf_meta(secret_key, session))
        errors: list[str] = []
        current = await state.lifetimes_store.load()
        if request.method == "POST":
            if not form.validate():
                errors.append("The form expired or came from elsewhere: reload and try again.")
            else:
                try:
                    wanted = Lifetimes(
                        parse(ACCESS, form.access.data or ""),
                        parse(REFRESH, form.refresh.data or ""),
                    )
                except LifetimeError as exc:
                    errors.append(str(exc))
                else:
                    await state.lifetimes_store.save(wanted)
                    state.lifetimes = wanted  # this worker at once; the others within RELOAD_S
                    await flash("Settings saved; every worker uses them within seconds.", "success")
                    return redirect("/admin/settings")
        else:
            form.access.data = f"{current.access_s / ACCESS.unit_s:g}"
            form.refresh.data = f"{current.refresh_s / REFRESH.unit_s:g}"
        page = await render_template(
            "auth_api/settings.html", form=form, errors=errors, bounds=(ACCESS, REFRESH)
        )
        return (page, 400) if errors else page

    return blueprint


async def reload_forever(state: _State) -> None:
    """Read the lifetimes again every RELOAD_S (errors logged; the last values stay)."""
    while True:
        await trio.sleep(RELOAD_S)
        if state.lifetimes_store is None:
            continue
        try:
            state.lifetimes = await state.lifetimes_store.load()
        except Exception:
            logger.exception("reading the token lifetimes failed; keeping the last ones")


async def json_body(allowed: set[str], *, required: set[str]) -> dict[str, str]:
    """The request's JSON object of string fields (the platform's reader: 415 if not JSON,
    400 if malformed), 400 for unknown, missing or non-string fields."""
    body = await read_json_object()
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
