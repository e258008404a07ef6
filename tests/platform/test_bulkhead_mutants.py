"""Bulkhead rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from service.fanout.source import SourceBusyError
from service.platform.bulkhead import Bulkhead, BulkheadSlot


def test_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^capacity must be >= 1$"):
        Bulkhead(0)


async def test_exactly_max_waiting_reads_may_wait_and_the_next_fails_fast(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bulkhead = Bulkhead(1, max_waiting=2)  # not the default of 4 * capacity
    await bulkhead.acquire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bulkhead.acquire)
        nursery.start_soon(bulkhead.acquire)
        await trio.testing.wait_all_tasks_blocked()
        assert bulkhead.waiting == 2
        with pytest.raises(SourceBusyError, match=r"1 reads in flight and 2 waiting"):
            await bulkhead.acquire()
        bulkhead.release()
        bulkhead.release()
    assert bulkhead.in_use == 1


async def test_a_slot_is_released_once_however_often_it_is_released() -> None:
    bulkhead = Bulkhead(2)
    await bulkhead.acquire()
    await bulkhead.acquire()
    slot = BulkheadSlot(bulkhead)
    slot.release()
    slot.release()
    slot.release_unless_kept()
    assert bulkhead.in_use == 1


async def test_a_slot_released_unless_kept_is_released_when_not_kept() -> None:
    bulkhead = Bulkhead(1)
    await bulkhead.acquire()
    BulkheadSlot(bulkhead).release_unless_kept()
    assert bulkhead.in_use == 0


async def test_a_kept_slot_is_held_until_released() -> None:
    bulkhead = Bulkhead(1)
    await bulkhead.acquire()
    slot = BulkheadSlot(bulkhead)
    slot.keep()
    slot.release_unless_kept()
    assert bulkhead.in_use == 1
    slot.release()
    assert bulkhead.in_use == 0
