"""Refresh tokens on the real table: the same rules, and real atomicity, on PostgreSQL."""

from __future__ import annotations

import time

import pytest
import trio

from service.accounts.store import UserStore
from service.auth_api.refresh_store import PgRefreshStore
from service.auth_api.refresh_tokens import (
    InvalidRefreshTokenError,
    RefreshTokenReusedError,
    RefreshTokens,
    hash_refresh_token,
)
from service.platform.database import open_database

from .test_faults import admin

pytestmark = pytest.mark.integration

DAY = 24 * 3600.0


async def test_rotation_reuse_and_logout_on_the_real_table(empty_db: str) -> None:
    async with open_database(empty_db, user="tests") as database:
        user = await UserStore(database).create("t@example.com", "t", "!")
        refresh = RefreshTokens(PgRefreshStore(database))
        first = await refresh.issue(user.id, 30 * DAY)
        async with admin(empty_db) as conn:
            stored = await conn.fetchval("SELECT token_hash FROM auth_refresh_tokens")
        assert stored == hash_refresh_token(first)  # only the hash is stored
        user_id, second = await refresh.rotate(first, 30 * DAY)
        assert user_id == user.id
        with pytest.raises(RefreshTokenReusedError):
            await refresh.rotate(first, 30 * DAY)
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(second, 30 * DAY)  # the family went with it
        other = await refresh.issue(user.id, 30 * DAY)
        assert await refresh.revoke(other) == user.id
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(other, 30 * DAY)


async def test_of_concurrent_refreshes_exactly_one_succeeds(empty_db: str) -> None:
    async with open_database(empty_db, user="tests") as database:
        user = await UserStore(database).create("c@example.com", "c", "!")
        refresh = RefreshTokens(PgRefreshStore(database))
        token = await refresh.issue(user.id, 30 * DAY)
        won: list[str] = []
        refused: list[Exception] = []

        async def use() -> None:
            try:
                won.append((await refresh.rotate(token, 30 * DAY))[1])
            except InvalidRefreshTokenError as exc:
                refused.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(use)
        assert len(won) == 1
        assert len(refused) == 7
        assert (await refresh.rotate(won[0], 30 * DAY))[0] == user.id


async def test_expired_records_are_purged_and_a_deleted_user_takes_their_tokens(
    empty_db: str,
) -> None:
    async with open_database(empty_db, user="tests") as database:
        users = UserStore(database)
        store = PgRefreshStore(database)
        gone = await users.create("g@example.com", "g", "!")
        kept = await users.create("k@example.com", "k", "!")
        refresh = RefreshTokens(store)
        await refresh.issue(gone.id, 30 * DAY)
        short = await refresh.issue(kept.id, 0.5)
        await refresh.issue(kept.id, 30 * DAY)
        async with admin(empty_db) as conn:
            await conn.execute(f"DELETE FROM accounts_users WHERE id = {gone.id}")
            assert await conn.fetchval("SELECT count(*) FROM auth_refresh_tokens") == 2
        assert await store.purge_expired(time.time() + 1) == 1
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(short, 30 * DAY)
