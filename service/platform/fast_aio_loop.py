"""trio-asyncio's loop, cheaper per asyncio callback: every ready callback runs in one trip.

trio-asyncio (0.16) runs asyncio on trio with one trio task that takes asyncio's callbacks
from a memory channel, one per trip of ``_main_loop_one``, and each trip enters a
``trio.move_on_after`` cancel scope (even with no asyncio timer at all: the scope then has
an infinite deadline), receives from the channel and passes a trio checkpoint. An asyncpg
query takes many callbacks, so under load the loop's own bookkeeping cost more than the
callbacks it ran (docs/trio-asyncio-loop.md has the measurements).

:class:`FastTrioEventLoop` overrides ``_main_loop_one`` only. One trip:

1. runs the asyncio timers that are due, in deadline order (dropping cancelled ones found
   at the head of the heap, so that a cancelled timer never wakes the loop);
2. runs the callbacks queued when the trip began, as asyncio's own ``_run_once`` does: a
   callback scheduled during the trip (one that reschedules itself, say) waits for the next
   trip, and a trip runs at most ``MAX_CALLBACKS_PER_TRIP`` of them, so trio's other tasks
   run between trips whatever asyncio does;
3. when there was nothing to run, first waits for the next callback (inside a cancel scope
   only while a live asyncio timer is pending: a cancelled one wakes nothing), runs it and
   those queued with it;
4. ends with one trio checkpoint.

``call_soon`` checks its callback only in asyncio's debug mode, as asyncio does (trio-asyncio
checks every one, through ``inspect``). Everything else (the queue, the timer heap,
trio-flavoured handles, stop and shutdown, the exception handler) is trio-asyncio's own. It
also lets asyncio's count of cancelled timers work (``_scheduled``), and, as asyncio does,
rebuilds the timer heap when most of it is cancelled timers: trio-asyncio otherwise keeps a
cancelled timer, and the context it holds, until it would have fired.

:func:`open_loop` is ``trio_asyncio.open_loop()`` with that class: it opens trio-asyncio's
loop and re-classes it before any asyncio work is scheduled (trio-asyncio's ``_main_loop``
looks ``_main_loop_one`` up on every trip, so the override applies from the next trip). It
relies on private parts of trio-asyncio, so pyproject.toml pins trio-asyncio to the tested
version and tests/platform/test_fast_aio_loop.py fails loudly when those parts change; with an
untested trio-asyncio, :func:`open_loop` logs a warning and keeps trio-asyncio's loop as is.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import sniffio
import trio
import trio_asyncio
from trio_asyncio._handles import AsyncHandle

__all__ = [
    "MAX_CALLBACKS_PER_TRIP",
    "TESTED_TRIO_ASYNCIO",
    "FastTrioEventLoop",
    "open_loop",
    "trio_asyncio_version",
]

logger = logging.getLogger("service.platform.fast_aio_loop")

#: The trio-asyncio versions whose internals this module was checked against (pyproject pins).
TESTED_TRIO_ASYNCIO = frozenset({"0.16.0"})

#: A bound on the callbacks one trip runs: trio's other tasks wait at most this many.
MAX_CALLBACKS_PER_TRIP = 256

#: As asyncio: rebuild the timer heap once this many of its timers are cancelled ...
_MIN_CANCELLED_TIMERS_TO_PURGE = 100
#: ... and they are more than this fraction of it.
_MIN_CANCELLED_TIMERS_FRACTION = 0.5


class FastTrioEventLoop(trio_asyncio.TrioEventLoop):  # type: ignore[misc]  # untyped base
    """A ``trio_asyncio.TrioEventLoop`` whose main loop runs every ready callback per trip.

    Open it with :func:`open_loop`; the module docstring says what a trip does.
    """

    async def _main_loop_one(self, no_wait: bool = False) -> None:
        if no_wait:
            # Only the shutdown drain asks for this (one callback, or trio.WouldBlock):
            # trio-asyncio's own version does exactly that.
            await super()._main_loop_one(no_wait=True)
            return
        budget = MAX_CALLBACKS_PER_TRIP
        timers: list[Any] = self._timers
        if timers:
            budget = self._run_due_timers(timers, budget)
        queue = self._q_recv
        queued = queue.statistics().current_buffer_used
        if not queued and budget == MAX_CALLBACKS_PER_TRIP:
            # Nothing to run: wait for a callback, or for the next live timer to be due.
            handle = None
            if timers:
                with trio.move_on_at(timers[0]._when):
                    handle = await queue.receive()
                if handle is None:
                    return  # the timer is due: the next trip runs it
            else:
                handle = await queue.receive()
            # Those queued with it, not by it, run in this trip too.
            queued = queue.statistics().current_buffer_used
            await self._dispatch(handle)
            budget -= 1
        # The callbacks queued now; those they schedule wait for the next trip.
        ready = min(queued, budget)
        if ready:
            await self._run_queued(queue, ready)
        await trio.lowlevel.checkpoint()

    def call_soon(
        self, callback: Any, *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        # trio-asyncio checks every callback (is it a coroutine function? through inspect);
        # asyncio checks only in debug mode, and so does this.
        if self._debug:
            self._check_callback(callback, "call_soon")
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context)
        self._q_send.send_nowait(handle)
        return handle

    def _timer_handle_cancelled(self, handle: Any) -> None:
        # trio-asyncio ignores this notice; count it, as asyncio does, to purge the heap.
        if handle._scheduled:
            self._timer_cancelled_count += 1

    def _run_due_timers(self, timers: list[Any], budget: int) -> int:
        """Run the due timers in deadline order, within ``budget``; what is left of it."""
        if (
            self._timer_cancelled_count > _MIN_CANCELLED_TIMERS_TO_PURGE
            and self._timer_cancelled_count > len(timers) * _MIN_CANCELLED_TIMERS_FRACTION
        ):
            self._purge_cancelled_timers(timers)
        now = self.time()
        previous, sniffio.thread_local.name = sniffio.thread_local.name, "asyncio"
        try:
            while timers and budget:
                head = timers[0]
                if head._cancelled:
                    heapq.heappop(timers)
                    head._scheduled = False
                    self._timer_cancelled_count -= 1
                elif head._when <= now:
                    heapq.heappop(timers)
                    head._scheduled = False
                    budget -= 1
                    head._run()
                else:
                    break
        finally:
            sniffio.thread_local.name = previous
        return budget

    def _purge_cancelled_timers(self, timers: list[Any]) -> None:
        live = []
        for handle in timers:
            if handle._cancelled:
                handle._scheduled = False
            else:
                live.append(handle)
        heapq.heapify(live)
        timers[:] = live
        self._timer_cancelled_count = 0

    async def _run_queued(self, queue: Any, count: int) -> None:
        """Take ``count`` handles off the queue and run them (plain ones without a checkpoint)."""
        previous, sniffio.thread_local.name = sniffio.thread_local.name, "asyncio"
        try:
            for _ in range(count):
                handle = queue.receive_nowait()
                if isinstance(handle, AsyncHandle):
                    sniffio.thread_local.name = previous
                    await self._start_trio_task(handle)
                    sniffio.thread_local.name = "asyncio"
                elif isinstance(handle, asyncio.TimerHandle):
                    self._schedule_timer(handle)
                elif not handle._cancelled:
                    handle._run()
        finally:
            sniffio.thread_local.name = previous

    async def _dispatch(self, handle: Any) -> None:
        """Run one handle taken off the queue, as trio-asyncio does."""
        if isinstance(handle, AsyncHandle):
            await self._start_trio_task(handle)
        elif isinstance(handle, asyncio.TimerHandle):
            self._schedule_timer(handle)
        elif not handle._cancelled:
            previous, sniffio.thread_local.name = sniffio.thread_local.name, "asyncio"
            try:
                handle._run()
            finally:
                sniffio.thread_local.name = previous

    def _schedule_timer(self, handle: Any) -> None:
        if handle._cancelled:
            return  # cancelled before it reached the heap: drop it now
        handle._scheduled = True  # so that cancelling it counts (asyncio's bookkeeping)
        heapq.heappush(self._timers, handle)

    async def _start_trio_task(self, handle: Any) -> None:
        # A trio-flavoured job (trio_as_future, run_in_executor, ...): trio-asyncio's own way.
        handle._context.run(self._nursery.start_soon, handle._run, name=handle._callback)
        await handle._started.wait()


@cache
def trio_asyncio_version() -> str:
    """The installed trio-asyncio's version."""
    try:
        return version("trio-asyncio")
    except PackageNotFoundError:  # pragma: no cover - installed from a source tree
        return str(trio_asyncio.__version__)


@asynccontextmanager
async def open_loop() -> AsyncIterator[Any]:
    """``trio_asyncio.open_loop()``, with a :class:`FastTrioEventLoop` when trio-asyncio is
    a tested version (``TESTED_TRIO_ASYNCIO``); else trio-asyncio's loop, with a warning."""
    async with trio_asyncio.open_loop() as loop:
        installed = trio_asyncio_version()
        if installed in TESTED_TRIO_ASYNCIO and type(loop) is trio_asyncio.TrioEventLoop:
            loop.__class__ = FastTrioEventLoop
            # trio-asyncio's first trip is under way (waiting for a callback): let it take
            # this one and end, so that every trip from now on is the fast loop's.
            await loop.synchronize()
        else:
            logger.warning(
                "trio-asyncio %s is not a version service.platform.fast_aio_loop was tested"
                " with (%s): running its own, slower main loop",
                installed,
                ", ".join(sorted(TESTED_TRIO_ASYNCIO)),
            )
        yield loop
