"""Refresh tokens on the real table: the same rules, and real atomicity, on PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest
import trio

from service.accounts.store import UserStore
from service.auth_api.refresh_store import PgRefreshStore, revoke_user_families
from service.auth_api.refresh_tokens import (
    InvalidRefreshTokenError,
    RefreshTokenReusedError,
    RefreshTokens,
    hash_refresh_token,
)
from service.platform.database import open_database
from tests.support.pg_admin import admin

pytestmark = pytest.mark.integration

DAY = 24 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_rotation_reuse_and_logout_on_the_real_table(empty_db: str) -> None:
    async with open_database(empty_db, user="tests") as database:
        user = await UserStore(database).create("t@example.com", "t", "!")
        clock = Clock()
        refresh = RefreshTokens(PgRefreshStore(database), clock=clock, reuse_grace_s=5)
        first = await refresh.issue(user.id, 30 * DAY)
        async with admin(empty_db) as conn:
            stored = await conn.fetchval("SELECT token_hash FROM auth_refresh_tokens")
        assert stored == hash_refresh_token(first)  # only the hash is stored
        user_id, second = await refresh.rotate(first, 30 * DAY)
        assert user_id == user.id
        clock.now += 4  # within the grace window: refused, nothing revoked
        with pytest.raises(InvalidRefreshTokenError) as within:
            await refresh.rotate(first, 30 * DAY)
        assert not isinstance(within.value, RefreshTokenReusedError)
        _, second = await refresh.rotate(second, 30 * DAY)
        clock.now += 2  # past it: reuse
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


async def test_records_of_an_earlier_version_keep_their_meaning(empty_db: str) -> None:
    """Rows written before families had a row of their own (no family row, no spent_at): a
    fresh one rotates, a spent one is reuse (its family is revoked), a revoked one is
    refused."""
    async with open_database(empty_db, user="tests") as database:
        user = await UserStore(database).create("old@example.com", "o", "!")
        refresh = RefreshTokens(PgRefreshStore(database))
        tokens = {name: str(uuid.uuid4()) for name in ("fresh", "spent", "current", "revoked")}
        rows = {
            "fresh": ("fam-a", "false", "false"),
            "spent": ("fam-b", "true", "false"),
            "current": ("fam-b", "false", "false"),
            "revoked": ("fam-c", "false", "true"),
        }
        async with admin(empty_db) as conn:
            for name, (family, spent, revoked) in rows.items():
                await conn.execute(
                    "INSERT INTO auth_refresh_tokens"
                    " (token_hash, user_id, family_id, expires_at, spent, revoked)"
                    f" VALUES ('{hash_refresh_token(tokens[name])}', {user.id}, '{family}',"
                    f" now() + interval '1 day', {spent}, {revoked})"
                )
        user_id, fresh = await refresh.rotate(tokens["fresh"], 30 * DAY)
        assert user_id == user.id
        assert (await refresh.rotate(fresh, 30 * DAY))[0] == user.id
        with pytest.raises(RefreshTokenReusedError):
            await refresh.rotate(tokens["spent"], 30 * DAY)
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(tokens["current"], 30 * DAY)  # its family went with it
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(tokens["revoked"], 30 * DAY)


@pytest.mark.parametrize("change", ["password", "demotion"])
async def test_a_new_password_or_a_demotion_revokes_every_refresh_token_of_the_user(
    empty_db: str, change: str
) -> None:
    """Through the accounts' store with the auth API's revoker, in the change's transaction;
    records of an earlier version (no family row) included."""
    async with open_database(empty_db, user="tests") as database:
        users = UserStore(database, revokers=[revoke_user_families])
        root = await users.create("root@example.com", "r", "!")
        target = await users.create("target@example.com", "t", "!")
        other = await users.create("other@example.com", "o", "!")
        async with admin(empty_db) as conn:
            await conn.execute(
                f"UPDATE accounts_users SET is_admin = true WHERE id IN ({root.id}, {target.id})"
            )
            legacy = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO auth_refresh_tokens (token_hash, user_id, family_id, expires_at)"
                f" VALUES ('{hash_refresh_token(legacy)}', {target.id}, 'legacy',"
                " now() + interval '1 day')"
            )
        refresh = RefreshTokens(PgRefreshStore(database))
        theirs = [await refresh.issue(target.id, 30 * DAY) for _ in range(2)]
        _, theirs[1] = await refresh.rotate(theirs[1], 30 * DAY)
        kept = await refresh.issue(other.id, 30 * DAY)
        await users.update(
            root,
            target.id,
            email=target.email,
            username=target.username,
            is_admin=False if change == "demotion" else None,
            password_hash="new hash" if change == "password" else None,
        )
        for token in [*theirs, legacy]:
            with pytest.raises(InvalidRefreshTokenError):
                await refresh.rotate(token, 30 * DAY)
        assert (await refresh.rotate(kept, 30 * DAY))[0] == other.id


async def test_a_deleted_users_tokens_and_new_log_ins_are_refused_not_errors(
    empty_db: str,
) -> None:
    async with open_database(empty_db, user="tests") as database:
        user = await UserStore(database).create("gone@example.com", "g", "!")
        refresh = RefreshTokens(PgRefreshStore(database))
        token = await refresh.issue(user.id, 30 * DAY)
        async with admin(empty_db) as conn:
            await conn.execute(f"DELETE FROM accounts_users WHERE id = {user.id}")
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(token, 30 * DAY)
        with pytest.raises(InvalidRefreshTokenError, match="no longer exists"):
            await refresh.issue(user.id, 30 * DAY)


async def test_a_log_in_checked_before_a_new_password_gets_no_token_after_it(
    empty_db: str,
) -> None:
    """A log-in read the user and checked the old password; then the password changed (which
    revoked every token of the user); then the log-in stores its token: refused, or that
    token would outlive the change. A log-in with the new password works."""
    async with open_database(empty_db, user="tests") as database:
        users = UserStore(database, revokers=[revoke_user_families])
        account = await users.create("race@example.com", "r", "old hash")
        refresh = RefreshTokens(PgRefreshStore(database))
        checked = await users.by_email("race@example.com")  # what the log-in verified
        assert checked is not None
        changed = await users.update(  # the pause between the check and the issue
            account,
            account.id,
            email=account.email,
            username=account.username,
            is_admin=None,
            password_hash="new hash",
        )
        with pytest.raises(InvalidRefreshTokenError, match="password changed"):
            await refresh.issue(checked.id, 30 * DAY, password_hash=checked.password_hash)
        async with admin(empty_db) as conn:
            assert await conn.fetchval("SELECT count(*) FROM auth_refresh_tokens") == 0
        token = await refresh.issue(changed.id, 30 * DAY, password_hash=changed.password_hash)
        assert (await refresh.rotate(token, 30 * DAY))[0] == account.id


async def test_a_log_in_waits_for_a_password_change_in_flight_and_then_is_refused(
    empty_db: str,
) -> None:
    """The password change holds the user's row (updated, not yet committed) when the log-in
    stores its token: the log-in waits for the commit, then sees the new password."""
    async with open_database(empty_db, user="tests") as database:
        account = await UserStore(database).create("wait@example.com", "w", "old hash")
        refresh = RefreshTokens(PgRefreshStore(database))
        outcome: list[str] = []

        async def log_in() -> None:
            try:
                await refresh.issue(account.id, 30 * DAY, password_hash="old hash")
            except InvalidRefreshTokenError as exc:
                outcome.append(str(exc))
            else:
                outcome.append("issued")

        # The change commits as its block ends, before the nursery waits for the log-in.
        async with admin(empty_db) as conn, trio.open_nursery() as nursery, conn.transaction():
            await conn.execute(
                "UPDATE accounts_users SET password_hash = 'new hash',"
                f" session_version = session_version + 1 WHERE id = {account.id}"
            )
            nursery.start_soon(log_in)
            await trio.sleep(0.5)
            assert outcome == []  # waiting for the change's commit
        assert len(outcome) == 1
        assert "password changed" in outcome[0]
