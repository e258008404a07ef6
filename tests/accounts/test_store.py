"""The users store's rules under concurrency, on a real PostgreSQL."""

from __future__ import annotations

import pytest
import trio

from service.accounts.store import Account, LastAdminError, UserStore
from service.platform.database import open_database
from tests.support.pg_admin import admin

pytestmark = pytest.mark.integration


async def two_admins(dsn: str, store: UserStore) -> tuple[Account, Account]:
    first = await store.create("a@example.com", "a", "!")
    second = await store.create("b@example.com", "b", "!")
    async with admin(dsn) as conn:
        await conn.execute("UPDATE accounts_users SET is_admin = true")
    a, b = await store.get(first.id), await store.get(second.id)
    assert a is not None
    assert b is not None
    return a, b


async def test_rights_are_checked_again_inside_the_transaction(empty_db: str) -> None:
    """An admin demoted after their request began cannot use the rights they had."""
    async with open_database(empty_db, user="tests") as database:
        store = UserStore(database)
        a, b = await two_admins(empty_db, store)
        await store.update(
            b, a.id, email=a.email, username=a.username, is_admin=False, password_hash=None
        )
        with pytest.raises(PermissionError, match="session has ended"):
            await store.update(
                a, a.id, email=a.email, username="x", is_admin=True, password_hash=None
            )
        with pytest.raises(PermissionError):
            await store.delete(a, b.id)
        after = await store.get(a.id)
        assert after is not None
        assert (after.is_admin, after.username) == (False, "a")


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(empty_db: str) -> None:
    async with open_database(empty_db, user="tests") as database:
        store = UserStore(database)
        a, b = await two_admins(empty_db, store)
        outcomes: list[str] = []

        async def demote(actor: Account, target: Account) -> None:
            try:
                await store.update(
                    actor,
                    target.id,
                    email=target.email,
                    username=target.username,
                    is_admin=False,
                    password_hash=None,
                )
            except (PermissionError, LastAdminError) as exc:
                outcomes.append(type(exc).__name__)
            else:
                outcomes.append("demoted")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(demote, a, b)
            nursery.start_soon(demote, b, a)
        admins = [user for user in (await store.page(0, 10))[0] if user.is_admin]
        assert len(admins) == 1
        assert sorted(outcomes) == ["PermissionError", "demoted"]


async def test_the_last_admin_cannot_demote_or_delete_themself(empty_db: str) -> None:
    async with open_database(empty_db, user="tests") as database:
        store = UserStore(database)
        a, b = await two_admins(empty_db, store)
        await store.delete(a, b.id)
        with pytest.raises(LastAdminError):
            await store.update(
                a, a.id, email=a.email, username="", is_admin=False, password_hash=None
            )
        with pytest.raises(LastAdminError):
            await store.delete(a, a.id)
        with pytest.raises(LookupError):
            await store.delete(a, b.id)  # already gone: the page answers 404
