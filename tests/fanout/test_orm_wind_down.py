"""The ORM source's wind-down of an interrupted connection, on fakes (a real trio-asyncio loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio_asyncio

from service.fanout.orm_source import RELEASE_TIMEOUT_S, _wind_down
from service.platform.aio import run_isolated
from service.platform.bulkhead import Bulkhead, BulkheadSlot


class FakeDriver:
    def __init__(self, *, ack_s: float = 0.0, broken: bool = False) -> None:
        self.ack_s, self.broken = ack_s, broken
        self.terminated = False
        self.probes = 0

    async def execute(self, _query: str) -> None:
        self.probes += 1
        await asyncio.sleep(self.ack_s)  # asyncpg waits for the cancel's acknowledgement
        if self.broken:
            raise ConnectionError("connection is closed")

    def terminate(self) -> None:
        self.terminated = True


class FakePooled:
    def __init__(self, driver: FakeDriver) -> None:
        self.driver_connection = driver
        self.info: dict[str, Any] = {}


class FakeSync:
    def __init__(self) -> None:
        self.invalidated = False

    def invalidate(self) -> None:
        self.invalidated = True


class FakeConn:
    def __init__(self) -> None:
        self.sync_connection = FakeSync()
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class GonePooled:
    """A pooled connection SQLAlchemy has already let go of: every access fails."""

    @property
    def driver_connection(self) -> Any:
        raise RuntimeError("Can't reconnect until invalid transaction is rolled back")


@pytest.fixture
async def loop() -> AsyncIterator[Any]:
    async with trio_asyncio.open_loop() as loop:
        yield loop


async def wind_down(loop: Any, pooled: Any) -> tuple[FakeConn, Bulkhead, asyncio.Future[Any]]:
    bulkhead = Bulkhead(1)
    await bulkhead.acquire()
    conn = FakeConn()

    async def start() -> asyncio.Future[Any]:
        query = asyncio.ensure_future(asyncio.sleep(3600))
        await _wind_down(conn, query, BulkheadSlot(bulkhead), pooled)  # type: ignore[arg-type]
        return query

    query = await run_isolated(loop, start())
    return conn, bulkhead, query


async def test_a_connection_whose_cancel_is_acknowledged_goes_back_to_the_pool(loop: Any) -> None:
    driver = FakeDriver(ack_s=0.01)
    pooled = FakePooled(driver)
    conn, bulkhead, query = await wind_down(loop, pooled)
    assert query.cancelled()
    assert driver.probes == 1
    assert not driver.terminated
    assert not conn.sync_connection.invalidated
    assert conn.closed  # returned to the pool
    assert pooled.info == {}  # the interrupted mark is gone again
    assert bulkhead.in_use == 0


async def test_a_connection_without_acknowledgement_in_time_is_terminated(loop: Any) -> None:
    driver = FakeDriver(ack_s=60.0)  # a lost cancel, a silent network
    started = trio.current_time()
    conn, bulkhead, _ = await wind_down(loop, FakePooled(driver))
    assert trio.current_time() - started == pytest.approx(RELEASE_TIMEOUT_S, abs=0.3)
    assert driver.terminated
    assert conn.sync_connection.invalidated
    assert conn.closed
    assert bulkhead.in_use == 0


async def test_a_connection_that_fails_its_probe_is_terminated(loop: Any) -> None:
    driver = FakeDriver(broken=True)
    conn, bulkhead, _ = await wind_down(loop, FakePooled(driver))
    assert driver.terminated
    assert conn.sync_connection.invalidated
    assert bulkhead.in_use == 0


async def test_the_slot_is_released_even_when_the_connection_is_already_gone(
    loop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, bulkhead, _ = await wind_down(loop, GonePooled())
    assert bulkhead.in_use == 0
    assert "returning an interrupted ORM connection failed" in caplog.text
