"""The raw-SQL pool and source, on a mocked asyncpg pool (run on a real trio-asyncio loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import trio
import trio_asyncio

from service.fanout.gather import gather
from service.fanout.outcome import Outcome
from service.fanout.sql_source import SqlTableSource
from service.platform.pg_pool import RELEASE_TIMEOUT_S, PgPool

ROWS = [{"id": 11, "name": "Test 11"}, {"id": 12, "name": "Test 12"}]


class FakeConnection:
    def __init__(self, pool: FakeAsyncpgPool) -> None:
        self.pool = pool
        self.queries: list[str] = []

    async def fetch(self, query: str) -> list[dict[str, Any]]:
        self.queries.append(query)
        await asyncio.sleep(self.pool.delay_s)
        if self.pool.error is not None:
            raise self.pool.error
        return list(self.pool.rows)

    async def fetchval(self, query: str) -> int:
        await self.fetch(query)
        return 1


class FakeAsyncpgPool:
    """asyncpg.Pool's surface, in memory: acquire, release (maybe slow), terminate."""

    def __init__(
        self,
        rows: list[dict[str, Any]] = ROWS,
        *,
        delay_s: float = 0.0,
        error: BaseException | None = None,
        release_s: float = 0.0,
    ) -> None:
        self.rows, self.delay_s, self.error, self.release_s = rows, delay_s, error, release_s
        self.lent: list[FakeConnection] = []
        self.released: list[tuple[FakeConnection, float | None]] = []
        self.terminated = False

    async def acquire(self) -> FakeConnection:
        conn = FakeConnection(self)
        self.lent.append(conn)
        return conn

    async def release(self, conn: FakeConnection, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - asyncpg.Pool.release's signature
        await asyncio.sleep(self.release_s)
        self.released.append((conn, timeout))

    def terminate(self) -> None:
        self.terminated = True

    def get_size(self) -> int:
        return len(self.lent)

    def get_idle_size(self) -> int:
        return len(self.released)


@pytest.fixture
async def loop() -> AsyncIterator[Any]:
    async with trio_asyncio.open_loop() as loop:
        yield loop


async def test_fetch_acquires_queries_and_releases_in_one_go(loop: Any) -> None:
    fake = FakeAsyncpgPool()
    pool = PgPool(fake, loop, 4)
    assert await pool.fetch("SELECT 1") == ROWS
    assert [conn.queries for conn in fake.lent] == [["SELECT 1"]]
    await trio.sleep(0.05)  # the rows did not wait for the release; it ends in the background
    assert pool.bulkhead.in_use == 0
    # No timeout after a clean answer: the release waits on nothing, and asyncpg would arm
    # an asyncio timer for it. The background release of an interrupted query has one.
    assert fake.released == [(fake.lent[0], None)]


async def test_cancelled_query_is_released_in_the_background(loop: Any) -> None:
    fake = FakeAsyncpgPool(delay_s=10.0, release_s=0.3)
    pool = PgPool(fake, loop, 4)
    started = trio.current_time()
    with trio.move_on_after(0.05):
        await pool.fetch("slow")
    assert trio.current_time() - started < 0.2  # the slow release is not waited for
    assert pool.releasing == 1
    assert pool.bulkhead.in_use == 1  # the connection is not back yet: its slot is held
    await trio.sleep(0.4)
    assert fake.released == [(fake.lent[0], RELEASE_TIMEOUT_S)]
    assert pool.releasing == 0
    assert pool.bulkhead.in_use == 0


async def test_a_clean_release_keeps_the_slot_until_it_is_done_but_not_the_rows(
    loop: Any,
) -> None:
    fake = FakeAsyncpgPool(release_s=0.3)
    pool = PgPool(fake, loop, 4)
    with trio.fail_after(0.2):  # the rows do not wait for the (slow) release
        assert await pool.fetch("q") == ROWS
    assert pool.bulkhead.in_use == 1  # the connection is not back yet: its slot is held
    await trio.sleep(0.4)
    assert fake.released == [(fake.lent[0], None)]  # the release was not cut
    assert pool.bulkhead.in_use == 0


async def test_queries_past_the_pool_size_wait_in_trio_not_in_the_driver(loop: Any) -> None:
    fake = FakeAsyncpgPool(delay_s=0.2)
    pool = PgPool(fake, loop, 2)
    # A slot not given back would leave the others waiting for ever: fail instead.
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(pool.fetch, "q")
            await trio.sleep(0.1)
            # Only as many reach the driver's pool as it has connections; the rest wait here.
            assert (len(fake.lent), pool.bulkhead.in_use, pool.bulkhead.waiting) == (2, 2, 3)
    assert len(fake.lent) == 5
    await trio.sleep(0.05)  # the last clean releases end in the background
    assert pool.bulkhead.in_use == 0


async def test_every_slot_comes_back_after_clean_answers_errors_and_cancels(loop: Any) -> None:
    fake = FakeAsyncpgPool(release_s=0.01)
    pool = PgPool(fake, loop, 2)
    await pool.fetch("ok")
    fake.error = asyncpg.UndefinedTableError("no such table")
    with pytest.raises(asyncpg.UndefinedTableError):
        await pool.fetchval("bad")
    fake.error, fake.delay_s = None, 10.0
    with trio.move_on_after(0.05):
        await pool.fetch("slow")
    with trio.move_on_after(0):  # cancelled before its task even started
        await pool.fetch("never")
    await trio.sleep(0.2)
    assert pool.bulkhead.in_use == 0


async def test_server_error_propagates_and_the_connection_goes_back(loop: Any) -> None:
    fake = FakeAsyncpgPool(error=asyncpg.UndefinedTableError("no such table"))
    pool = PgPool(fake, loop, 4)
    with pytest.raises(asyncpg.UndefinedTableError):
        await pool.fetch("SELECT id, name FROM nope")
    await trio.sleep(0.05)
    assert [conn for conn, _ in fake.released] == fake.lent


async def test_terminate_closes_the_pool(loop: Any) -> None:
    fake = FakeAsyncpgPool()
    PgPool(fake, loop, 4).terminate()
    assert fake.terminated


async def test_sql_source_selects_id_and_name_from_its_table(loop: Any) -> None:
    fake = FakeAsyncpgPool()
    source = SqlTableSource("data_2", "data_2", PgPool(fake, loop, 4))
    assert await source.fetch() == ROWS
    assert fake.lent[0].queries == ['SELECT id, name FROM "data_2"']


async def test_hung_sql_source_is_dropped_and_the_healthy_one_answers(loop: Any) -> None:
    healthy = FakeAsyncpgPool([{"id": 1, "name": "Test 1"}])
    hung = FakeAsyncpgPool(delay_s=60.0)
    sources = [
        SqlTableSource("data_1", "data_1", PgPool(healthy, loop, 4)),
        SqlTableSource("data_2", "data_2", PgPool(hung, loop, 4)),
    ]
    started = trio.current_time()
    result = await gather(sources, timeout_s=0.2)
    assert trio.current_time() - started < 0.2 + 0.05
    assert result.rows == [{"id": 1, "name": "Test 1"}]
    assert [r.outcome for r in result.reports] == [Outcome.OK, Outcome.TIMEOUT]
