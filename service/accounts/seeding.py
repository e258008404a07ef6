"""The first start's users: an admin and some fake users, once, on an empty users table."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import trio_asyncio
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..platform.settings import SettingsError
from .emails import InvalidEmailError, email_key, normalize_email
from .fake_users import fake_users
from .models import User
from .passwords import Passwords
from .rules import password_problem
from .store import engine_for, user_rows
from .users_file import NewUser

__all__ = ["SeedPlan", "SeedResult", "SeedingError", "seed_accounts"]

logger = logging.getLogger("service.accounts.seeding")

#: A password hash no password matches (not an argon2 hash: verify() says False).
UNUSABLE_HASH = "!seeded-user: no password"

#: One seeding at a time, whichever process starts first (an advisory lock's key).
_SEED_LOCK = 0x5EED_0ACC


class SeedingError(SettingsError):
    """The seeding configuration cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """What to create on an empty users table (``ADMIN_EMAIL``, ``ADMIN_PASSWORD``,
    ``SEED_USERS``): an admin, and that many fake users."""

    admin_email: str = "admin@example.com"
    admin_password: str | None = None
    seed_users: int = 25
    faker_seed: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SeedPlan:
        email = (env.get("ADMIN_EMAIL") or "admin@example.com").strip()
        try:
            email = normalize_email(email)
        except InvalidEmailError as exc:
            raise SeedingError(
                f"ADMIN_EMAIL is not an email address: {email[:80]!r} ({exc})"
            ) from None
        password = env.get("ADMIN_PASSWORD") or None
        problem = password_problem(password) if password is not None else None
        if problem:
            raise SeedingError(f"ADMIN_PASSWORD must have {problem}")
        raw = (env.get("SEED_USERS") or "25").strip()
        try:
            count = int(raw)
        except ValueError:
            raise SeedingError(f"SEED_USERS must be an integer, got {raw[:20]!r}") from None
        if not 0 <= count <= 100_000:
            raise SeedingError("SEED_USERS must be from 0 to 100000")
        return cls(email, password, count)


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What the seeding did: nothing (the table had users), or created these."""

    seeded: bool
    users_created: int = 0
    #: The admin's password when it was generated here: to be shown once, never stored.
    generated_admin_password: str | None = None


async def seed_accounts(dsn: str, plan: SeedPlan, passwords: Passwords) -> SeedResult:
    """Create the admin and ``plan.seed_users`` fake users if no user exists yet.

    Idempotent and never duplicated: it runs in one transaction under an advisory lock,
    and only when the users table is empty.
    """
    generated = None if plan.admin_password else secrets.token_urlsafe(12)
    admin = NewUser(plan.admin_email, "admin", plan.admin_password or generated or "", True)
    users = [admin, *fake_users(plan.seed_users, seed=plan.faker_seed)]
    # The admin's email may not be taken by a fake user.
    users = [admin, *(u for u in users[1:] if email_key(u.email) != email_key(admin.email))]
    async with trio_asyncio.open_loop() as loop:
        empty: bool = await loop.run_aio_coroutine(_is_empty(dsn))
        if not empty:
            return SeedResult(seeded=False)
        # Only the admin can log in: the fake users' passwords are shown nowhere, so they
        # get a hash no password matches (and 100,000 of them cost no argon2 time).
        hashes = [await passwords.hash(admin.password)] + [UNUSABLE_HASH] * (len(users) - 1)
        created: int = await loop.run_aio_coroutine(_insert_if_empty(dsn, users, hashes))
    if created == 0:
        return SeedResult(seeded=False)
    return SeedResult(True, created, generated)


async def _is_empty(dsn: str) -> bool:
    engine = engine_for(dsn)
    try:
        async with AsyncSession(engine) as session:
            return (await session.execute(select(func.count(User.id)))).scalar_one() == 0
    finally:
        await engine.dispose()


async def _insert_if_empty(dsn: str, users: list[NewUser], hashes: list[str]) -> int:
    engine = engine_for(dsn)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEED_LOCK})
            if (await session.execute(select(func.count(User.id)))).scalar_one():
                return 0  # another process seeded meanwhile
            session.add_all(user_rows(users, hashes))
        return len(users)
    finally:
        await engine.dispose()
