"""Admission control: a bounded number of fan-outs in flight, a short FIFO queue, fast shedding."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from service.fanout.admission import AdmissionControl, OverloadedError


async def hold(control: AdmissionControl, seconds: float, log: list[str], name: str) -> None:
    try:
        async with control.admit():
            log.append(f"{name} in")
            await trio.sleep(seconds)
    except OverloadedError as exc:
        log.append(f"{name} shed: {exc.reason}")


async def test_requests_up_to_the_limit_are_admitted_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(2, max_queue=0, max_wait_s=0.0)
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        for name in "ab":
            nursery.start_soon(hold, control, 1.0, log, name)
        await trio.testing.wait_all_tasks_blocked()
        assert (control.in_flight, control.queued) == (2, 0)
    assert sorted(log) == ["a in", "b in"]
    assert (control.in_flight, control.admitted_total, control.shed_total) == (0, 2, 0)


async def test_past_the_limit_and_a_full_queue_a_request_is_shed_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(1, max_queue=1, max_wait_s=10.0)
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, control, 1.0, log, "a")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, control, 1.0, log, "b")  # queued
        await trio.testing.wait_all_tasks_blocked()
        shed_at = trio.current_time()
        await hold(control, 1.0, log, "c")
        assert trio.current_time() == shed_at  # answered without waiting
    assert log == ["a in", "c shed: the queue is full", "b in"]
    assert control.shed_total == 1


async def test_a_queued_request_waits_at_most_max_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(1, max_queue=5, max_wait_s=0.03)
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, control, 1.0, log, "a")
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        await hold(control, 1.0, log, "b")
        assert trio.current_time() - started == pytest.approx(0.03)
    assert log == ["a in", "b shed: no slot came free in time"]
    assert (control.queued, control.in_flight) == (0, 0)


async def test_a_queued_request_gives_up_at_its_start_by_time_if_sooner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(1, max_queue=5, max_wait_s=10.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, control, 1.0, [], "a")
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        with pytest.raises(OverloadedError):
            async with control.admit(start_by=started + 0.2):
                pass
        assert trio.current_time() - started == pytest.approx(0.2)


async def test_a_freed_slot_goes_to_the_oldest_waiter_not_a_newcomer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(1, max_queue=5, max_wait_s=10.0)
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, control, 1.0, log, "a")
        await trio.testing.wait_all_tasks_blocked()
        for name in "bc":
            nursery.start_soon(hold, control, 1.0, log, name)
            await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1.0)  # a is done exactly now; d arrives at the same instant
        nursery.start_soon(hold, control, 1.0, log, "d")
    assert log == ["a in", "b in", "c in", "d in"]
    assert control.in_flight == 0


async def test_a_waiter_cancelled_from_outside_leaves_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(1, max_queue=5, max_wait_s=10.0)
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, control, 1.0, log, "a")
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.1):  # the client goes away while queued
            await hold(control, 1.0, log, "b")
        assert control.queued == 0
    assert log == ["a in"]
    assert (control.in_flight, control.shed_total) == (0, 0)


async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """a leaves and hands its slot to b; in the same step (no checkpoint between) b is
    cancelled, so b wakes up cancelled while holding the slot: it must pass it to c."""
    control = AdmissionControl(1, max_queue=5, max_wait_s=10.0)
    log: list[str] = []
    b_scope = trio.CancelScope()

    async def a() -> None:
        async with control.admit():
            log.append("a in")
            await trio.sleep(1.0)
            b_scope.cancel()  # the last thing before __aexit__ hands the slot to b

    async def b() -> None:
        with b_scope:
            await hold(control, 1.0, log, "b")
        log.append("b cancelled")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(a)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(b)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, control, 1.0, log, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert control.queued == 2
    assert log == ["a in", "b cancelled", "c in"]
    assert (control.in_flight, control.queued, control.shed_total) == (0, 0, 0)


async def test_limit_zero_admits_everything(autojump_clock: trio.testing.MockClock) -> None:
    control = AdmissionControl(0, max_queue=0, max_wait_s=0.0)
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        for name in "abcdef":
            nursery.start_soon(hold, control, 1.0, log, name)
    assert sorted(log) == [f"{name} in" for name in "abcdef"]
    assert control.in_flight == 0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        AdmissionControl(-1, max_queue=0, max_wait_s=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        AdmissionControl(1, max_queue=0, max_wait_s=float("nan"))
