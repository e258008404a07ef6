"""A source's cap on reads in flight: waits in trio, fails fast when too many wait."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from service.fanout.gather import gather
from service.fanout.outcome import Outcome
from service.fanout.source import FakeSource, SourceBusyError
from service.platform.bulkhead import Bulkhead


async def test_a_read_past_capacity_waits_for_a_slot_and_gets_it_when_one_is_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bulkhead = Bulkhead(1, max_waiting=1)
    await bulkhead.acquire()
    got_at: list[float] = []

    async def second() -> None:
        await bulkhead.acquire()
        got_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert (bulkhead.in_use, bulkhead.waiting) == (1, 1)
        await trio.sleep(0.5)
        bulkhead.release()  # synchronous, as the asyncio side calls it
    assert got_at == [pytest.approx(0.5)]
    assert bulkhead.in_use == 1


async def test_a_read_fails_fast_when_max_waiting_reads_already_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bulkhead = Bulkhead(2, max_waiting=1)
    await bulkhead.acquire()
    await bulkhead.acquire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bulkhead.acquire)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(SourceBusyError, match="2 reads in flight and 1 waiting"):
            await bulkhead.acquire()
        bulkhead.release()
    assert bulkhead.waiting == 0


async def test_a_slot_that_is_free_is_taken_even_when_max_waiting_is_zero() -> None:
    bulkhead = Bulkhead(1, max_waiting=0)
    await bulkhead.acquire()
    assert bulkhead.in_use == 1
    with pytest.raises(SourceBusyError):
        await bulkhead.acquire()


def test_default_max_waiting_is_four_rounds_and_capacity_must_be_positive() -> None:
    assert Bulkhead(3)._max_waiting == 12
    with pytest.raises(ValueError, match="capacity"):
        Bulkhead(0)


async def test_a_busy_source_is_reported_as_busy_and_the_others_still_count() -> None:
    busy = FakeSource("busy", error=SourceBusyError("full"))
    ok = FakeSource("ok", [{"id": 1, "name": "a"}])
    result = await gather([busy, ok], timeout_s=1.0)
    assert result.rows == [{"id": 1, "name": "a"}]
    assert [(r.source, r.outcome) for r in result.reports] == [
        ("busy", Outcome.BUSY),
        ("ok", Outcome.OK),
    ]
