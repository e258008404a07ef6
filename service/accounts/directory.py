"""The accounts' user directory: the seam through which other capabilities (the auth API)
register, authenticate, read and change users, under the same rules as the web pages."""

from __future__ import annotations

from dataclasses import dataclass

import trio
from flask.sansio.app import App
from quart import g

from ..platform.user_deletion import user_deleted
from .emails import InvalidEmailError, email_key, normalize_email
from .login_throttle import LoginThrottle
from .passwords import Passwords
from .rules import PASSWORD_RULE, USERNAME_RULE, password_problem, username_problem
from .store import Account, CredentialsRevoker, EmailTakenError, LastAdminError, UserStore

__all__ = [
    "PASSWORD_RULE",
    "USERNAME_RULE",
    "Account",
    "CredentialsRevoker",
    "Directory",
    "EmailTakenError",
    "InvalidUserError",
    "LastAdminError",
    "TooManyAttemptsError",
    "directory",
    "on_credentials_revoked",
]

#: Where the accounts blueprint puts this request's directory (None without a database).
DIRECTORY_KEY = "accounts_directory"
#: Where ``on_credentials_revoked`` keeps the revokers, in ``app.extensions``.
REVOKERS_KEY = "accounts.credential_revokers"


def on_credentials_revoked(app: App, revoker: CredentialsRevoker) -> None:
    """Have ``revoker`` end the log-ins another capability keeps for a user (the auth API's
    refresh tokens) whenever the accounts end that user's sessions for a change of rights
    or credentials: a new password (the edit page) or an admin's demotion. It runs inside
    that change's transaction (asyncio-flavoured, with its connection and the user's id,
    the user's row locked), so both commit or neither. Register before the app serves.
    A log-out of the web app does not call it: it ends the web sessions only."""
    revokers: list[CredentialsRevoker] = app.extensions.setdefault(REVOKERS_KEY, [])
    revokers.append(revoker)


class InvalidUserError(ValueError):
    """A field breaks the accounts' rules; the message says which and why."""


class TooManyAttemptsError(Exception):
    """Too many failed log-ins for this email or client, or registrations from this client:
    try again in ``retry_after`` seconds (a ``Retry-After`` value)."""

    def __init__(self, retry_after: str) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Directory:
    """Registered users, for other capabilities. Every method applies the web app's rules:
    unique emails (case-insensitively), the password policy, the log-in throttle."""

    store: UserStore
    passwords: Passwords
    throttle: LoginThrottle
    dummy_hash: str

    async def register(
        self, email: str, password: str, username: str = "", *, client: str = "-"
    ) -> Account:
        """A new user; :class:`EmailTakenError` or :class:`InvalidUserError`;
        :class:`TooManyAttemptsError` past the registrations a client may make."""
        address = check_email(email)
        check_password(password)
        check_username(username)
        verdict = await self.throttle.register(client)
        if not verdict.allowed:
            raise TooManyAttemptsError(verdict.retry_after_header)
        return await self.store.create(address, username, await self.passwords.hash(password))

    async def authenticate(self, email: str, password: str, client: str) -> Account | None:
        """The user if the password is right; ``None`` (the same time either way) if not.

        :class:`TooManyAttemptsError` past the limits of the log-in page (shared with it);
        :class:`InvalidUserError` for an email or password no account can have (a control
        character, a lone surrogate).
        """
        try:
            key = email_key(email)  # the key of registration (and of the throttle)
        except InvalidEmailError as exc:
            raise InvalidUserError(f"email: {exc}") from None
        if not password_is_text(password):
            raise InvalidUserError("password: not valid text (a lone surrogate)")
        verdict = await self.throttle.attempt(key, client)
        if not verdict.allowed:
            raise TooManyAttemptsError(verdict.retry_after_header)
        account = await self.store.by_email(email)
        ok = await self.passwords.verify(
            account.password_hash if account else self.dummy_hash, password
        )
        if account is None or not ok:
            return None
        await self.throttle.succeeded(key, client, verdict)
        return account

    async def get(self, user_id: int) -> Account | None:
        return await self.store.get(user_id)

    async def delete_self(self, account: Account) -> None:
        """The user deletes their own account (and, by the database's cascades, everything
        that is theirs). :class:`LastAdminError` for the last admin; ``PermissionError`` if
        their session ended meanwhile; ``LookupError`` if already gone."""
        await self.delete(account, account.id)

    async def delete(self, actor: Account, user_id: int) -> None:
        """``actor`` deletes a user (themself, or anyone if an admin), then every
        capability's listener runs (:func:`~service.platform.user_deletion.user_deleted`:
        the tasks remove the user's image files). Every path that deletes a user comes
        here. Both steps run whatever happens to the request: a deletion that commits
        always tells the listeners. Errors as :meth:`UserStore.delete`."""
        with trio.CancelScope(shield=True):
            await self.store.delete(actor, user_id)
            await user_deleted(user_id)

    async def update_profile(
        self, account: Account, *, email: str | None = None, username: str | None = None
    ) -> Account:
        """The user changes their own email and/or username (never their rights)."""
        address = check_email(email) if email is not None else account.email
        if username is not None:
            check_username(username)
        return await self.store.update(
            account,
            account.id,
            email=address,
            username=username if username is not None else account.username,
            is_admin=None,
            password_hash=None,
        )


def directory() -> Directory | None:
    """This request's directory, or ``None`` when the accounts have no database."""
    found: Directory | None = g.get(DIRECTORY_KEY)
    return found


def check_email(email: str) -> str:
    """A new address in its stored form, or :class:`InvalidUserError` saying why."""
    try:
        return normalize_email(email)
    except InvalidEmailError as exc:
        raise InvalidUserError(f"email: {exc}") from None


def password_is_text(password: str) -> bool:
    """Whether the password can be hashed at all (UTF-8 has no lone surrogates)."""
    try:
        password.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_password(password: str) -> None:
    """A new password: the rule of every path (see ``rules``)."""
    problem = password_problem(password)
    if problem:
        raise InvalidUserError(f"password: {problem}")


def check_username(username: str) -> None:
    problem = username_problem(username)
    if problem:
        raise InvalidUserError(f"username: {problem}")
