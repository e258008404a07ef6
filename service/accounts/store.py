"""Storing users: all of a batch in one transaction, or none of it."""

from __future__ import annotations

from collections.abc import Sequence

import trio_asyncio
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from .models import User
from .passwords import Passwords
from .users_file import NewUser, UsersFileError

__all__ = ["count_users", "load_users"]


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


def _engine(dsn: str) -> AsyncEngine:
    return create_async_engine(make_url(dsn).set(drivername="postgresql+asyncpg"))


async def _insert(dsn: str, users: Sequence[NewUser], hashes: list[str]) -> int:
    engine = _engine(dsn)
    try:
        async with AsyncSession(engine) as session, session.begin():
            emails = [user.email.lower() for user in users]
            taken = (
                (
                    await session.execute(
                        select(User.email).where(func.lower(User.email).in_(emails))
                    )
                )
                .scalars()
                .all()
            )
            if taken:
                shown = ", ".join(sorted(taken)[:5]) + (" ..." if len(taken) > 5 else "")
                raise UsersFileError(
                    f"{len(taken)} of these emails are already registered ({shown});"
                    " nothing was loaded"
                )
            session.add_all(
                User(
                    email=user.email,
                    username=user.username,
                    password_hash=password_hash,
                    is_admin=user.is_admin,
                )
                for user, password_hash in zip(users, hashes, strict=True)
            )
        return len(users)
    except IntegrityError as exc:  # registered meanwhile, by someone else
        raise UsersFileError("an email was registered meanwhile; nothing was loaded") from exc
    finally:
        await engine.dispose()


async def _count(dsn: str) -> int:
    engine = _engine(dsn)
    try:
        async with AsyncSession(engine) as session:
            return int((await session.execute(select(func.count(User.id)))).scalar_one())
    finally:
        await engine.dispose()
