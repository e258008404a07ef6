"""The trio-side pool and the raw-SQL source, on a mocked triopg connection."""

from __future__ import annotations

import asyncpg
import pytest
import trio
import trio.testing

from service.fanout import gather
from service.outcome import Outcome
from service.pg_pool import TriopgPool
from service.sql_source import SqlTableSource

from .fake_pg import FakeConnector

ROWS = [{"id": 11, "name": "Test 11"}, {"id": 12, "name": "Test 12"}]


async def test_connection_is_reused_after_a_clean_answer() -> None:
    connector = FakeConnector(rows=ROWS)
    pool = TriopgPool(connector, max_size=2)
    for _ in range(3):
        async with pool.connection() as conn:
            assert await conn.fetch("q") == ROWS
    assert len(connector.opened) == 1
    assert pool.idle_count == 1


async def test_cancelled_query_terminates_its_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = FakeConnector(rows=ROWS, delay_s=10.0)
    pool = TriopgPool(connector, max_size=2)
    with trio.move_on_after(1.0):
        async with pool.connection() as conn:
            await conn.fetch("slow")
    assert connector.opened[0].terminated
    assert pool.idle_count == 0
    assert pool.in_use == 0


async def test_server_error_keeps_the_connection() -> None:
    connector = FakeConnector(error=asyncpg.UndefinedTableError("no such table"))
    pool = TriopgPool(connector, max_size=1)
    with pytest.raises(asyncpg.UndefinedTableError):
        async with pool.connection() as conn:
            await conn.fetch("q")
    assert not connector.opened[0].terminated
    assert pool.idle_count == 1


async def test_transport_error_terminates_the_connection() -> None:
    connector = FakeConnector(error=ConnectionResetError("reset"))
    pool = TriopgPool(connector, max_size=1)
    with pytest.raises(ConnectionResetError):
        async with pool.connection() as conn:
            await conn.fetch("q")
    assert connector.opened[0].terminated
    assert pool.idle_count == 0


async def test_pool_never_lends_more_than_max_size(autojump_clock: trio.testing.MockClock) -> None:
    connector = FakeConnector(rows=ROWS, delay_s=1.0)
    pool = TriopgPool(connector, max_size=2)
    peak = 0

    async def use() -> None:
        nonlocal peak
        async with pool.connection() as conn:
            peak = max(peak, pool.in_use)
            await conn.fetch("q")

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(use)
    assert peak == 2
    assert len(connector.opened) == 2
    assert trio.current_time() - started == pytest.approx(3.0)


async def test_close_terminates_idle_connections_and_refuses_new_loans() -> None:
    connector = FakeConnector(rows=ROWS)
    pool = TriopgPool(connector, max_size=1)
    async with pool.connection():
        pass
    pool.close()
    assert connector.opened[0].terminated
    with pytest.raises(RuntimeError):
        async with pool.connection():
            pass


async def test_sql_source_selects_id_and_name_from_its_table() -> None:
    connector = FakeConnector(rows=ROWS)
    source = SqlTableSource("data_2", "data_2", TriopgPool(connector, max_size=1), loop=None)
    assert await source.fetch() == ROWS
    assert connector.opened[0].queries == ['SELECT id, name FROM "data_2"']


async def test_hung_sql_source_is_dropped_and_its_connection_killed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hung = FakeConnector(rows=ROWS, delay_s=60.0)
    healthy = FakeConnector(rows=[{"id": 1, "name": "Test 1"}])
    sources = [
        SqlTableSource("data_1", "data_1", TriopgPool(healthy, max_size=1), loop=None),
        SqlTableSource("data_2", "data_2", TriopgPool(hung, max_size=1), loop=None),
    ]
    result = await gather(sources, timeout_s=2.0)
    assert result.rows == [{"id": 1, "name": "Test 1"}]
    assert [r.outcome for r in result.reports] == [Outcome.OK, Outcome.TIMEOUT]
    assert hung.opened[0].terminated
    assert not healthy.opened[0].terminated


async def test_idle_connection_closed_by_the_server_is_not_lent_again() -> None:
    connector = FakeConnector(rows=ROWS)
    pool = TriopgPool(connector, max_size=2)
    async with pool.connection(), pool.connection():
        pass
    for conn in connector.opened:
        conn.terminated = True  # the server went away while they were idle
    async with pool.connection() as conn:
        assert await conn.fetch("q") == ROWS
    assert len(connector.opened) == 3
    assert pool.idle_count == 1
