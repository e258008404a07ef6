"""The accounts' pages: log in, register, log out, the users, a profile, edit, delete."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from quart import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
)
from quart.typing import ResponseReturnValue
from quart_auth import QuartAuth, login_user, logout_user
from werkzeug.exceptions import TooManyRequests
from wtforms.csrf.core import CSRFTokenField

from ..platform.database import Database
from ..platform.lifespan import WhileServing, hold_while_serving
from ..platform.navigation import Viewer, install_viewer
from ..platform.rate_limits import RateLimiter
from ..platform.settings import Settings
from .auth import STORE_KEY, current_user, new_auth_user, require_user
from .directory import (
    DIRECTORY_KEY,
    REVOKERS_KEY,
    Directory,
    InvalidUserError,
    TooManyAttemptsError,
)
from .forms import DeleteForm, EditForm, LoginForm, LogoutForm, RegisterForm, csrf_meta
from .login_throttle import LoginThrottle
from .passwords import Passwords
from .redirects import safe_next
from .reports import users_report
from .store import Account, EmailTakenError, LastAdminError, UserStore

__all__ = ["PAGE_SIZE", "create_blueprint"]

logger = logging.getLogger("service.accounts.views")

#: Users per page of /users.
PAGE_SIZE = 25
#: How long a log-in lasts without a new one (the cookie's lifetime).
SESSION_DAYS = 14
#: The largest id a route accepts (BIGINT): a larger one is a 404, not a database error.
MAX_ID = 2**63 - 1


@dataclass
class _State:
    store: UserStore | None = None
    database: Database | None = None
    #: Checked against when the email is unknown, so that the answer takes as long.
    dummy_hash: str = ""


def create_blueprint(
    settings: Settings,
    *,
    database: WhileServing[Database],
    secret_key: str,
    passwords: Passwords | None = None,
    limiter: RateLimiter | None = None,
) -> Blueprint:
    """The accounts' pages, on the worker's application ``database`` (the platform's);
    without one (no ``DATABASE_URL``) they answer 503. The log-in and registration limits
    count in ``limiter`` (default: this worker's memory)."""
    blueprint = Blueprint("accounts", __name__, template_folder="templates")
    state = _State()
    hasher = passwords or Passwords()
    throttle = LoginThrottle(limiter, register=settings.register_rate_limit)
    auth = QuartAuth(
        cookie_secure=settings.cookie_secure,
        cookie_samesite="Lax",
        duration=SESSION_DAYS * 24 * 3600,
    )

    async def viewer() -> Viewer | None:
        """Who the navigation shows as logged in, with the log-out form's CSRF token."""
        account = await current_user()
        if account is None:
            return None
        token = cast(CSRFTokenField, LogoutForm(meta=meta())["csrf_token"]).current_token
        return Viewer(
            name=account.username or account.email,
            profile_path=f"/users/{account.id}",
            is_admin=account.is_admin,
            logout_path="/logout",
            logout_fields=(("csrf_token", str(token)),),
        )

    @blueprint.record_once
    def init_auth(setup: Any) -> None:
        auth.init_app(setup.app)
        install_viewer(
            setup.app, viewer, log_in_links=(("/login", "Log in"), ("/register", "Register"))
        )

    @asynccontextmanager
    async def store_while_serving() -> AsyncIterator[None]:
        opened = database()
        if opened is None:
            logger.warning("no DATABASE_URL: the accounts pages answer 503")
            yield
            return
        state.database = opened
        state.store = UserStore(
            opened, revokers=current_app.extensions.setdefault(REVOKERS_KEY, [])
        )
        await state.store.fill_email_keys()  # rows stored before keys existed: see email_keys
        state.dummy_hash = await hasher.hash("not anyone's password")
        try:
            yield
        finally:
            state.store = state.database = None

    hold_while_serving(blueprint, store_while_serving, name="the accounts' store")

    @blueprint.before_app_request
    async def expose_store() -> None:
        g.setdefault(STORE_KEY, state.store)
        if state.store is not None:
            g.setdefault(DIRECTORY_KEY, directory_of(state.store))

    def directory_of(users: UserStore) -> Directory:
        """The directory over ``users``: the page and the seam share its rules and counters."""
        return Directory(users, hasher, throttle, state.dummy_hash)

    def store() -> UserStore:
        if state.store is None:
            abort(503, "The accounts need a database (DATABASE_URL).")
        return state.store

    def meta() -> dict[str, Any]:
        return csrf_meta(secret_key, session)

    def client() -> str:
        return request.remote_addr or "-"

    def too_many(retry_after: str, what: str = "failed log-ins") -> NoReturn:
        raise TooManyRequests(
            f"Too many {what}: wait {retry_after} s, then try again.",
            retry_after=int(retry_after),
        )

    async def start_session(account: Account) -> None:
        """A fresh session (new CSRF secret) for a fresh log-in."""
        session.clear()
        login_user(new_auth_user(account))

    @blueprint.route("/login", methods=["GET", "POST"])
    async def login() -> ResponseReturnValue:
        users = store()
        form = LoginForm(await request.form, meta=meta())
        if request.method == "GET":
            form.next.data = safe_next(request.args.get("next"))
            return await render_template("accounts/login.html", form=form)
        if not form.validate():
            return await render_template("accounts/login.html", form=form), 400
        # The same answer, and about the same time, whether or not the email exists.
        try:
            account = await directory_of(users).authenticate(
                form.email.data or "", form.password.data or "", client()
            )
        except TooManyAttemptsError as exc:
            too_many(exc.retry_after)
        except InvalidUserError as exc:  # the form's validators let no such text through
            form.email.errors = [str(exc)]
            return await render_template("accounts/login.html", form=form), 400
        if account is None:
            form.password.errors = ["Wrong email or password."]
            return await render_template("accounts/login.html", form=form), 400
        await start_session(account)
        await flash(f"Welcome, {account.username or account.email}.", "success")
        return redirect(safe_next(form.next.data))

    @blueprint.route("/register", methods=["GET", "POST"])
    async def register() -> ResponseReturnValue:
        users = store()
        form = RegisterForm(await request.form, meta=meta())
        if request.method == "POST" and form.validate():
            verdict = await throttle.register(client())  # each costs a hash
            if not verdict.allowed:
                too_many(verdict.retry_after_header, "registrations from your address")
            password_hash = await hasher.hash(form.password.data or "")
            try:
                account = await users.create(
                    (form.email.data or "").strip(), form.username.data or "", password_hash
                )
            except EmailTakenError:
                # Registration cannot hide which emails are taken; log-in does (see above).
                form.email.errors = ["An account with this email exists already."]
            else:
                await start_session(account)
                await flash("Registered; you are logged in.", "success")
                return redirect("/users")
        status = 400 if request.method == "POST" else 200
        return await render_template("accounts/register.html", form=form), status

    @blueprint.post("/logout")
    async def logout() -> ResponseReturnValue:
        form = LogoutForm(await request.form, meta=meta())
        if not form.validate():
            abort(400, "The form expired; reload the page and try again.")
        account = await current_user()
        if account is not None:
            # The cookie may be kept (copied, stolen): it must stop working, not just go.
            await store().end_sessions(account.id)
        logout_user()
        session.clear()
        await flash("Logged out.", "info")
        return redirect("/")

    @blueprint.get("/users")
    @require_user
    async def users_list() -> ResponseReturnValue:
        try:
            page = min(max(1, int(request.args.get("page", "1"))), 1_000_000)
        except ValueError:
            page = 1
        accounts, total = await store().page((page - 1) * PAGE_SIZE, PAGE_SIZE)
        pages = max(1, -(-total // PAGE_SIZE))
        return await render_template(
            "accounts/users.html", users=accounts, page=page, pages=pages, total=total
        )

    @blueprint.get(f"/users/<int(max={MAX_ID}):user_id>")
    @require_user
    async def profile(user_id: int) -> ResponseReturnValue:
        user = await _found(user_id)
        return await render_template("accounts/profile.html", user=user, me=await current_user())

    @blueprint.route(f"/users/<int(max={MAX_ID}):user_id>/edit", methods=["GET", "POST"])
    @require_user
    async def edit(user_id: int) -> ResponseReturnValue:
        me = cast(Account, await current_user())
        if me.id != user_id and not me.is_admin:
            abort(403, "You may edit only your own profile.")
        user = await _found(user_id)
        form = EditForm(await request.form, meta=meta())
        if request.method == "GET":
            form.email.data, form.username.data = user.email, user.username
            form.is_admin.data = user.is_admin
            return await render_template("accounts/edit.html", form=form, user=user, me=me)
        status = 400
        if form.validate():
            password_hash = None
            if form.new_password.data:
                if me.id == user_id:
                    # Guessing one's current password is throttled like a log-in.
                    verdict = await throttle.attempt(me.email, client())
                    if not verdict.allowed:
                        too_many(verdict.retry_after_header)
                    if await hasher.verify(me.password_hash, form.current_password.data or ""):
                        await throttle.succeeded(me.email, client(), verdict)
                    else:
                        form.current_password.errors = ["Your current password is needed."]
                if not form.current_password.errors:
                    password_hash = await hasher.hash(form.new_password.data)
            if not form.current_password.errors:
                try:
                    changed = await store().update(
                        me,
                        user_id,
                        email=(form.email.data or "").strip(),
                        username=form.username.data or "",
                        is_admin=bool(form.is_admin.data),  # applied for an admin only
                        password_hash=password_hash,
                    )
                except PermissionError as exc:
                    abort(403, f"Not saved: {exc}.")
                except LookupError:
                    abort(404, f"No user {user_id}.")
                except EmailTakenError:
                    form.email.errors = ["Another account has this email."]
                except LastAdminError as exc:
                    form.is_admin.errors = [f"Not saved: {exc}."]
                    status = 409
                else:
                    if changed.id == me.id:  # stay logged in with the new session version
                        login_user(new_auth_user(changed))
                    await flash("Profile saved.", "success")
                    return redirect(f"/users/{user_id}")
        page = await render_template("accounts/edit.html", form=form, user=user, me=me)
        return page, status

    @blueprint.route(f"/users/<int(max={MAX_ID}):user_id>/delete", methods=["GET", "POST"])
    @require_user
    async def delete(user_id: int) -> ResponseReturnValue:
        me = cast(Account, await current_user())
        if me.id != user_id and not me.is_admin:
            abort(403, "You may delete only your own account.")
        user = await _found(user_id)
        form = DeleteForm(await request.form, meta=meta())
        error = None
        if request.method == "POST":
            if not form.validate():
                abort(400, "The form expired; reload the page and try again.")
            try:
                await directory_of(store()).delete(me, user_id)
            except PermissionError as exc:
                abort(403, f"Not deleted: {exc}.")
            except LookupError:
                abort(404, f"No user {user_id}.")
            except LastAdminError as exc:
                error = f"Not deleted: {exc}."
            else:
                if me.id == user_id:
                    logout_user()
                    session.clear()
                await flash(f"Deleted {user.email}.", "info")
                return redirect("/users" if me.id != user_id else "/")
        page = await render_template(
            "accounts/delete.html", form=form, user=user, me=me, error=error
        )
        return (page, 409) if error else page

    @blueprint.get("/reports/users")
    @require_user
    async def report() -> ResponseReturnValue:
        database = state.database
        if database is None:
            abort(503, "The accounts need a database (DATABASE_URL).")
        return await render_template("accounts/report.html", report=await users_report(database))

    async def _found(user_id: int) -> Account:
        account = await store().get(user_id)
        if account is None:
            abort(404, f"No user {user_id}.")
        return account

    return blueprint
