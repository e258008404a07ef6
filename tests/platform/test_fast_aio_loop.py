"""The fast trio-asyncio main loop: the internals it relies on, and asyncio's semantics kept.

If ``test_trio_asyncio_internals_are_the_reviewed_ones`` fails, trio-asyncio changed under
service/platform/fast_aio_loop.py: read the new versions of the listed functions, check the
override still matches them (docs/trio-asyncio-loop.md says what it relies on), then update
the hashes, TESTED_TRIO_ASYNCIO and the pin in pyproject.toml together.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import logging
import tomllib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sniffio
import trio
import trio.testing
import trio_asyncio
import trio_asyncio._async
import trio_asyncio._base
import trio_asyncio._handles
import trio_asyncio._loop
from packaging.requirements import Requirement

from service.platform import fast_aio_loop
from service.platform.fast_aio_loop import (
    MAX_CALLBACKS_PER_TRIP,
    TESTED_TRIO_ASYNCIO,
    FastTrioEventLoop,
    open_loop,
    trio_asyncio_version,
)
from tests.support import ROOT

_BASE = trio_asyncio._base.BaseTrioEventLoop

#: sha256 (first 16 hex digits) of the source of each trio-asyncio part the override relies
#: on or replaces, as reviewed in trio-asyncio 0.16.0.
REVIEWED_SOURCES: dict[str, tuple[Callable[..., Any], str]] = {
    # Calls self._main_loop_one() on every trip, shielded, until stopped: the seam.
    "BaseTrioEventLoop._main_loop": (_BASE._main_loop, "45a1198042d30c94"),
    # What the override replaces (and calls for no_wait=True).
    "BaseTrioEventLoop._main_loop_one": (_BASE._main_loop_one, "cbe727d658663f07"),
    # Drains with _main_loop_one(no_wait=True) at shutdown.
    "BaseTrioEventLoop._main_loop_exit": (_BASE._main_loop_exit, "beede9a994f2c4fc"),
    # Ignores cancelled timers (the override counts them instead).
    "BaseTrioEventLoop._timer_handle_cancelled": (
        _BASE._timer_handle_cancelled,
        "b5a033e367a48656",
    ),
    # Sets up _q_send/_q_recv, _timers.
    "BaseTrioEventLoop.__init__": (_BASE.__init__, "d1d5d493743f7900"),
    # Timers and callbacks all go through the queue as asyncio handles.
    "BaseTrioEventLoop.call_later": (_BASE.call_later, "c91d8dd7aae198ba"),
    "BaseTrioEventLoop.call_at": (_BASE.call_at, "812a2a39d1ecdfd6"),
    "BaseTrioEventLoop.call_soon": (_BASE.call_soon, "dbfc6c85474fd371"),
    "TrioEventLoop._queue_handle": (
        trio_asyncio._async.TrioEventLoop._queue_handle,
        "25c333f7a57ca512",
    ),
    # Sets _started first: the override waits on it, as trio-asyncio does.
    "AsyncHandle._run": (trio_asyncio._handles.AsyncHandle._run, "4c2ece2a9ad23b42"),
    # Builds a plain TrioEventLoop and starts its _main_loop before yielding it.
    "open_loop": (trio_asyncio._loop.open_loop, "73bcbe0df39d88a2"),
}


def _source_hash(function: Callable[..., Any]) -> str:
    source = inspect.getsource(getattr(function, "__wrapped__", function))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def test_trio_asyncio_internals_are_the_reviewed_ones() -> None:
    assert trio_asyncio_version() in TESTED_TRIO_ASYNCIO
    changed = {
        name: _source_hash(function)
        for name, (function, reviewed) in REVIEWED_SOURCES.items()
        if _source_hash(function) != reviewed
    }
    assert not changed, (
        f"trio-asyncio {trio_asyncio_version()} changed what service/platform/fast_aio_loop.py"
        f" overrides or relies on: {changed}; review it (see this module's docstring)"
    )
    assert str(inspect.signature(_BASE._main_loop_one)) == "(self, no_wait=False)"
    assert issubclass(trio_asyncio._handles.AsyncHandle, asyncio.Handle)
    assert not issubclass(trio_asyncio._handles.AsyncHandle, asyncio.TimerHandle)


def test_pyproject_pins_trio_asyncio_to_the_tested_versions() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [
        Requirement(spec)
        for spec in pyproject["project"]["dependencies"]
        if Requirement(spec).name == "trio-asyncio"
    ]
    assert len(pins) == 1
    allowed = {str(s.version) for s in pins[0].specifier if s.operator == "=="}
    assert allowed == set(TESTED_TRIO_ASYNCIO)
    assert len(pins[0].specifier) == 1


async def test_asyncio_internals_the_loop_uses_are_there() -> None:
    async with open_loop() as loop:
        assert isinstance(loop._timers, list)
        assert isinstance(loop._q_recv, trio.MemoryReceiveChannel)
        assert loop._q_recv.statistics().current_buffer_used == 0
        assert loop._timer_cancelled_count == 0
        handle = loop.call_later(10, lambda: None)
        assert {"_when", "_cancelled", "_scheduled", "_run"} <= set(dir(handle))
        handle.cancel()


@pytest.fixture
async def loop() -> AsyncIterator[Any]:
    async with open_loop() as loop:
        yield loop


async def test_open_loop_gives_the_fast_loop(loop: Any) -> None:
    assert type(loop) is FastTrioEventLoop
    assert trio_asyncio.current_loop.get() is loop
    assert await loop.run_aio_coroutine(_answer()) == 42


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


class _TaskSteps(trio.abc.Instrument):
    """Numbers trio's task steps: callbacks that note the same number ran in one step, with
    no other trio task in between."""

    def __init__(self) -> None:
        self.step = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.step += 1


@pytest.fixture
async def steps() -> AsyncIterator[_TaskSteps]:
    instrument = _TaskSteps()
    trio.lowlevel.add_instrument(instrument)
    try:
        yield instrument
    finally:
        trio.lowlevel.remove_instrument(instrument)


async def test_every_ready_callback_runs_in_one_trip(loop: Any, steps: _TaskSteps) -> None:
    # trio-asyncio's own loop takes a trip, and a trio step, per callback.
    seen: list[int] = []
    for _ in range(100):
        loop.call_soon(lambda: seen.append(steps.step))
    await loop.synchronize()
    assert len(seen) == 100
    assert len(set(seen)) == 1, f"100 ready callbacks took {len(set(seen))} trio steps"


async def test_self_rescheduling_callback_does_not_starve_trio(
    loop: Any, steps: _TaskSteps
) -> None:
    seen: list[int] = []
    stop = False

    def again() -> None:
        seen.append(steps.step)
        if not stop:
            loop.call_soon(again)

    loop.call_soon(again)
    with trio.fail_after(10):  # real time: a starved trio never gets past this
        for _ in range(200):
            await trio.lowlevel.checkpoint()
    stop = True
    await loop.synchronize()
    # It ran, once per trip (a trip is one trio step): it waits for the next trip.
    assert len(seen) >= 100
    assert len(set(seen)) == len(seen)


async def test_a_burst_of_callbacks_is_bounded_per_trip(loop: Any, steps: _TaskSteps) -> None:
    seen: list[int] = []
    total = 3 * MAX_CALLBACKS_PER_TRIP + 10
    for _ in range(total):
        loop.call_soon(lambda: seen.append(steps.step))
    await loop.synchronize()
    assert len(seen) == total
    per_step = [seen.count(step) for step in sorted(set(seen))]
    assert max(per_step) == MAX_CALLBACKS_PER_TRIP, per_step
    assert len(per_step) == 4


async def test_call_later_runs_in_deadline_order_not_before_its_time(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    ran: list[tuple[str, float]] = []
    start = loop.time()

    def note(name: str) -> None:
        ran.append((name, loop.time() - start))

    loop.call_later(0.3, note, "c")
    loop.call_later(0.1, note, "a")
    loop.call_later(0.2, note, "b")
    loop.call_soon(note, "now")
    await trio.sleep(1)
    assert [name for name, _ in ran] == ["now", "a", "b", "c"]
    for (_, at), due in zip(ran[1:], (0.1, 0.2, 0.3), strict=True):
        assert due <= at < due + 0.01


async def test_timers_due_in_the_same_trip_run_in_deadline_order(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    ran: list[str] = []
    now = loop.time()
    loop.call_at(now + 0.2, ran.append, "later")
    loop.call_at(now + 0.1, ran.append, "sooner")
    await loop.synchronize()  # both in the heap, neither due
    autojump_clock.jump(0.5)  # both due at once
    await loop.synchronize()
    await loop.synchronize()  # a trip runs the due timers before its queued callbacks
    assert ran == ["sooner", "later"]


async def test_asyncio_sleep_and_wait_for_timeout(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    with trio.fail_after(50):  # virtual time: a loop that never runs timers fails here
        await loop.run_aio_coroutine(asyncio.sleep(5))
    assert 5 <= trio.current_time() - start < 5.01
    with pytest.raises(TimeoutError):
        await loop.run_aio_coroutine(asyncio.wait_for(asyncio.sleep(60), 1))
    assert 6 <= trio.current_time() - start < 6.01


async def test_a_cancelled_timer_never_runs_nor_stays_in_the_heap(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    ran: list[str] = []
    handle = loop.call_later(10, ran.append, "cancelled")
    await loop.synchronize()
    assert loop._timers == [handle]
    handle.cancel()
    await loop.synchronize()
    await loop.synchronize()
    assert loop._timers == []  # dropped at once, not kept until its deadline
    await trio.sleep(20)
    assert ran == []


async def test_cancelled_timers_under_a_live_one_are_purged(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    live = loop.call_later(1, lambda: None)
    handles = [loop.call_later(3600 + i, lambda: None) for i in range(300)]
    await loop.synchronize()
    assert len(loop._timers) == 301
    for handle in handles:
        handle.cancel()
    await loop.synchronize()
    await loop.synchronize()
    assert loop._timers == [live]
    assert loop._timer_cancelled_count == 0


async def test_trio_cancellation_cancels_the_asyncio_task(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    start = trio.current_time()
    with trio.move_on_after(1) as scope:
        await loop.run_aio_coroutine(slow())
    assert scope.cancelled_caught
    assert seen == ["cancelled"]
    assert trio.current_time() - start < 1.01


async def test_asyncio_cancellation_reaches_the_trio_caller(
    loop: Any, autojump_clock: trio.testing.MockClock
) -> None:
    task = loop.create_task(asyncio.sleep(100))
    loop.call_later(1, task.cancel)
    with trio.fail_after(50), pytest.raises(asyncio.CancelledError):
        await trio_asyncio.run_aio_future(task)
    assert task.cancelled()


async def test_errors_reach_the_caller_and_the_exception_handler(loop: Any) -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("from asyncio")

    with pytest.raises(ValueError, match="from asyncio"):
        await loop.run_aio_coroutine(fails())

    handled: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, context: handled.append(context["exception"]))
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("from a callback")

    loop.call_soon(ran.append, "before")
    loop.call_soon(broken)
    loop.call_soon(ran.append, "after")  # the rest of the trip still runs
    await loop.synchronize()
    assert ran == ["before", "after"]
    assert [str(exc) for exc in handled] == ["from a callback"]


async def test_trio_flavoured_work_from_asyncio(loop: Any) -> None:
    async def uses_trio() -> tuple[int, int]:
        slept = await loop.trio_as_future(_trio_sleep_and_answer)
        threaded = await loop.run_in_executor(None, lambda: 7)
        return slept, threaded

    assert await loop.run_aio_coroutine(uses_trio()) == (42, 7)


async def _trio_sleep_and_answer() -> int:
    await trio.sleep(0.01)
    return 42


async def test_callbacks_see_asyncio_and_trio_tasks_see_trio(loop: Any) -> None:
    libraries: list[str] = []
    loop.call_soon(lambda: libraries.append(sniffio.current_async_library()))
    loop.call_soon(lambda: libraries.append(sniffio.current_async_library()))
    await loop.synchronize()
    assert libraries == ["asyncio", "asyncio"]
    assert sniffio.current_async_library() == "trio"


async def test_call_soon_keeps_asyncio_contract(loop: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    context = contextvars.copy_context()
    context.run(var.set, "in the given context")
    seen: list[str] = []
    handle = loop.call_soon(lambda: seen.append(var.get()), context=context)
    assert isinstance(handle, asyncio.Handle)
    await loop.synchronize()
    assert seen == ["in the given context"]
    loop.set_debug(True)
    try:
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            loop.call_soon(_answer)
    finally:
        loop.set_debug(False)


async def test_a_closed_loop_takes_no_callbacks() -> None:
    async with open_loop() as loop:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(lambda: None)


async def test_callbacks_queued_before_exit_still_run() -> None:
    ran: list[str] = []
    async with open_loop() as loop:
        for i in range(5):
            loop.call_soon(ran.append, str(i))
    assert ran == ["0", "1", "2", "3", "4"]


async def test_callbacks_queued_after_stop_run_when_the_loop_closes() -> None:
    # stop() ends the main loop in the middle of a trip: what was queued after it stays
    # queued, and trio-asyncio's shutdown drain (_main_loop_one(no_wait=True)) runs it.
    ran: list[str] = []
    async with open_loop() as loop:
        loop.call_soon(ran.append, "before stop")
        loop.stop()
        loop.call_soon(ran.append, "after stop")
        await loop.wait_stopped()
        assert ran == ["before stop"]
    assert ran == ["before stop", "after stop"]


async def test_untested_trio_asyncio_keeps_its_own_loop_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fast_aio_loop, "trio_asyncio_version", lambda: "0.99.0")
    with caplog.at_level(logging.WARNING, logger="service.platform.fast_aio_loop"):
        async with open_loop() as loop:
            assert type(loop) is trio_asyncio.TrioEventLoop
            assert await loop.run_aio_coroutine(_answer()) == 42
    assert "trio-asyncio 0.99.0 is not a version" in caplog.text
