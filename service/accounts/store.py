"""Storing users: the CLI's batch loads, and the pages' reads and writes (SQLAlchemy ORM)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import trio_asyncio
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from ..platform.database import Database
from .email_keys import fill_email_keys
from .emails import email_forms, email_key
from .models import User
from .passwords import Passwords
from .users_file import NewUser, UsersFileError

__all__ = [
    "Account",
    "CredentialsRevoker",
    "EmailTakenError",
    "LastAdminError",
    "UserStore",
    "count_users",
    "engine_for",
    "load_users",
    "user_rows",
]


#: Every change of users runs under this advisory lock (one at a time: they are rare).
_CHANGE_LOCK = 0x0ACC_C4A6

#: Ends a user's log-ins kept by another capability, in the accounts' transaction (its
#: connection, the user's id): see ``directory.on_credentials_revoked``. asyncio-flavoured.
CredentialsRevoker = Callable[[AsyncConnection, int], Awaitable[None]]


class EmailTakenError(ValueError):
    """Another user has this email (emails are unique case-insensitively: by the caseless
    :func:`~.emails.email_key` each row stores, and looks up by)."""


class LastAdminError(ValueError):
    """The change would leave no admin."""


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the pages see it (a plain value: no ORM session behind it)."""

    id: int
    email: str
    username: str
    is_admin: bool
    session_version: int
    created_at: datetime
    password_hash: str

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(
            user.id,
            user.email,
            user.username,
            user.is_admin,
            user.session_version,
            user.created_at,
            user.password_hash,
        )


class UserStore:
    """The pages' reads and writes of users, each its own short transaction.

    ``revokers`` run inside the transaction of a change that ends the user's sessions (a
    new password, a lost admin flag), so other log-ins of the user end in the same commit.
    """

    def __init__(self, database: Database, revokers: Sequence[CredentialsRevoker] = ()) -> None:
        self._database = database
        self._engine = database.engine
        self._revokers = revokers

    async def get(self, user_id: int) -> Account | None:
        return await self._database.run(self._get(user_id))

    async def by_email(self, email: str) -> Account | None:
        """The user of ``email`` (compared by :func:`~.emails.email_key`), if any."""
        return await self._database.run(self._by_email(email_key(email)))

    async def fill_email_keys(self) -> list[int]:
        """Give every row stored before email keys existed its key (see ``email_keys``);
        the ids of the rows left without one."""
        return await self._database.run(self._fill_email_keys())

    async def page(self, offset: int, limit: int) -> tuple[list[Account], int]:
        """One page of users by id, and how many there are in all."""
        return await self._database.run(self._page(offset, limit))

    async def create(self, email: str, username: str, password_hash: str) -> Account:
        """A new user; ``email`` is stored as :func:`~.emails.email_forms` gives it: the
        form to show and the caseless key."""
        return await self._database.run(self._create(email, username, password_hash))

    async def update(
        self,
        actor: Account,
        user_id: int,
        *,
        email: str,
        username: str,
        is_admin: bool | None,
        password_hash: str | None,
    ) -> Account:
        """``actor`` changes a user: themself, or anyone if an admin. ``is_admin`` is
        applied only for an admin actor. A new password (or a lost admin flag) ends the
        user's sessions. The actor's rights are checked again inside the transaction:
        ``PermissionError`` if they changed since the request began."""
        return await self._database.run(
            self._update(actor, user_id, email, username, is_admin, password_hash)
        )

    async def delete(self, actor: Account, user_id: int) -> None:
        """``actor`` deletes a user: themself, or anyone if an admin (checked again inside
        the transaction); never the last admin."""
        await self._database.run(self._delete(actor, user_id))

    async def end_sessions(self, user_id: int) -> None:
        """Every session of the user stops working (log-out: the cookie itself may live on)."""
        await self._database.run(self._end_sessions(user_id))

    # asyncio-flavoured: run on the database's loop.

    def _session(self) -> AsyncSession:
        return AsyncSession(self._engine, expire_on_commit=False)

    async def _get(self, user_id: int) -> Account | None:
        async with self._session() as session:
            user = await session.get(User, user_id)
            return Account.of(user) if user is not None else None

    async def _by_email(self, key: str) -> Account | None:
        async with self._session() as session:
            user = (
                await session.execute(select(User).where(User.email_key == key))
            ).scalar_one_or_none()
            return Account.of(user) if user is not None else None

    async def _page(self, offset: int, limit: int) -> tuple[list[Account], int]:
        async with self._session() as session:
            total = (await session.execute(select(func.count(User.id)))).scalar_one()
            users = (
                await session.execute(select(User).order_by(User.id).offset(offset).limit(limit))
            ).scalars()
            return [Account.of(user) for user in users], int(total)

    async def _fill_email_keys(self) -> list[int]:
        async with self._session() as session:
            return await fill_email_keys(session)

    async def _create(self, email: str, username: str, password_hash: str) -> Account:
        try:
            async with self._session() as session, session.begin():
                stored, key = email_forms(email)
                user = User(
                    email=stored,
                    email_key=key,
                    username=username,
                    password_hash=password_hash,
                )
                session.add(user)
                await session.flush()
                await session.refresh(user)
                return Account.of(user)
        except IntegrityError as exc:
            raise EmailTakenError(email) from exc

    async def _authorized(self, session: AsyncSession, actor: Account, user_id: int) -> User:
        """Serialize every change of users (an advisory lock: no deadlock whatever the
        order), re-read the actor, check its rights now, and lock the target."""
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGE_LOCK})
        current = await session.get(User, actor.id)
        if current is None or current.session_version != actor.session_version:
            raise PermissionError("your session has ended")
        if current.id != user_id and not current.is_admin:
            raise PermissionError("only an admin may change another user")
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise LookupError(user_id)
        return user

    async def _admins(self, session: AsyncSession) -> int:
        return int(
            (
                await session.execute(select(func.count(User.id)).where(User.is_admin.is_(True)))
            ).scalar_one()
        )

    async def _update(
        self,
        actor: Account,
        user_id: int,
        email: str,
        username: str,
        is_admin: bool | None,
        password_hash: str | None,
    ) -> Account:
        try:
            async with self._session() as session, session.begin():
                user = await self._authorized(session, actor, user_id)
                current_actor = await session.get(User, actor.id)
                assert current_actor is not None
                wanted = is_admin if current_actor.is_admin and is_admin is not None else None
                demoted = user.is_admin and wanted is False
                if demoted and await self._admins(session) <= 1:
                    raise LastAdminError("the last admin cannot lose admin rights")
                if password_hash is not None or demoted:
                    user.session_version += 1
                    connection = await session.connection()
                    for revoke in self._revokers:  # the user's row is locked: see _authorized
                        await revoke(connection, user.id)
                user.email, user.email_key = email_forms(email)
                user.username = username
                if wanted is not None:
                    user.is_admin = wanted
                if password_hash is not None:
                    user.password_hash = password_hash
                await session.flush()
                return Account.of(user)
        except IntegrityError as exc:
            raise EmailTakenError(email) from exc

    async def _delete(self, actor: Account, user_id: int) -> None:
        async with self._session() as session, session.begin():
            user = await self._authorized(session, actor, user_id)
            if user.is_admin and await self._admins(session) <= 1:
                raise LastAdminError("the last admin cannot be deleted")
            await session.delete(user)

    async def _end_sessions(self, user_id: int) -> None:
        async with self._session() as session, session.begin():
            await session.execute(
                update(User)
                .where(User.id == user_id)
                .values(session_version=User.session_version + 1)
            )


async def load_users(dsn: str, users: Sequence[NewUser], passwords: Passwords) -> int:
    """Hash every password, then insert every user in one transaction; how many.

    Nothing is stored when any email is already registered (case-insensitively):
    :class:`UsersFileError` names them. Runs on a trio-asyncio loop of its own (the CLI).
    """
    hashes = [await passwords.hash(user.password) for user in users]
    async with trio_asyncio.open_loop() as loop:
        inserted: int = await loop.run_aio_coroutine(_insert(dsn, users, hashes))
    return inserted


async def count_users(dsn: str) -> int:
    """How many users are registered (for the CLI and the tests)."""
    async with trio_asyncio.open_loop() as loop:
        counted: int = await loop.run_aio_coroutine(_count(dsn))
    return counted


def user_rows(users: Sequence[NewUser], hashes: Sequence[str]) -> list[User]:
    """The rows of new users, each with its password's hash."""
    rows = []
    for user, password_hash in zip(users, hashes, strict=True):
        email, key = email_forms(user.email)
        rows.append(
            User(
                email=email,
                email_key=key,
                username=user.username,
                password_hash=password_hash,
                is_admin=user.is_admin,
            )
        )
    return rows


def engine_for(dsn: str) -> AsyncEngine:
    """A short-lived engine (the CLI's and start-up's one-off work; dispose it after)."""
    # hide_parameters: a failed INSERT's message (logged) never holds the password hashes.
    return create_async_engine(
        make_url(dsn).set(drivername="postgresql+asyncpg"), hide_parameters=True
    )


async def _insert(dsn: str, users: Sequence[NewUser], hashes: list[str]) -> int:
    engine = engine_for(dsn)
    try:
        async with AsyncSession(engine) as session:
            # Rows stored before email keys existed, if no server started since: keyed first.
            await fill_email_keys(session)
        async with AsyncSession(engine) as session, session.begin():
            keys = [email_key(user.email) for user in users]
            taken = (
                (await session.execute(select(User.email).where(User.email_key.in_(keys))))
                .scalars()
                .all()
            )
            if taken:
                shown = ", ".join(sorted(taken)[:5]) + (" ..." if len(taken) > 5 else "")
                raise UsersFileError(
                    f"{len(taken)} of these emails are already registered ({shown});"
                    " nothing was loaded"
                )
            session.add_all(user_rows(users, hashes))
        return len(users)
    except IntegrityError as exc:  # registered meanwhile, by someone else
        raise UsersFileError("an email was registered meanwhile; nothing was loaded") from exc
    finally:
        await engine.dispose()


async def _count(dsn: str) -> int:
    engine = engine_for(dsn)
    try:
        async with AsyncSession(engine) as session:
            return int((await session.execute(select(func.count(User.id)))).scalar_one())
    finally:
        await engine.dispose()
