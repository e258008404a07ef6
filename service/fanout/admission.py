"""Admission control: a worker takes on only as many fan-outs as it can answer in time.

Under overload, a server that accepts everything answers everything late: every
request in flight shares the same CPU, so all of them miss their deadline together
(and timed-out sources cost reconnects, which cost more CPU: a metastable loop).
Shedding the excess early with a cheap ``503`` keeps the admitted ones on time.
See docs/overload.md for the design and the measurements behind the defaults.
"""

from __future__ import annotations

import math
from collections import deque
from types import TracebackType

import trio

__all__ = ["AdmissionControl", "OverloadedError"]


class OverloadedError(Exception):
    """The request was not admitted: the worker is at its limit and the queue is full or
    the request waited as long as it may."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class _Waiter:
    __slots__ = ("admitted", "event")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.admitted = False


class AdmissionControl:
    """At most ``limit`` requests in flight; up to ``max_queue`` more wait, FIFO, each at
    most ``max_wait_s`` (and never past the time it must start by); the rest are shed.

    A slot freed by a finished request is handed straight to the oldest waiter, so a
    newcomer cannot overtake the queue. ``limit`` 0 admits everything (no control).
    Use ``async with control.admit(start_by=...)``; it raises :class:`OverloadedError`.
    """

    def __init__(self, limit: int, *, max_queue: int, max_wait_s: float) -> None:
        if limit < 0 or max_queue < 0 or not max_wait_s >= 0:
            raise ValueError("limit, max_queue and max_wait_s must be >= 0")
        self.limit = limit
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self.admitted_total = 0
        self.shed_total = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._waiters)

    def admit(self, *, start_by: float = math.inf) -> _Admission:
        """A context that holds one slot; waits at most until ``start_by`` (trio time) and
        ``max_wait_s`` from now for one."""
        return _Admission(self, start_by)

    def retry_after_s(self) -> int:
        """The ``Retry-After`` to send with a shed request, in whole seconds (at least 1)."""
        return 1

    async def _acquire(self, start_by: float) -> None:
        if self.limit == 0 or (self.in_flight < self.limit and not self._waiters):
            self.in_flight += 1
            self.admitted_total += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise self._shed("the queue is full")
        waiter = _Waiter()
        self._waiters.append(waiter)
        give_up_at = min(start_by, trio.current_time() + self.max_wait_s)
        try:
            with trio.move_on_at(give_up_at):
                await waiter.event.wait()
        except BaseException:  # cancelled from outside (client gone, shutdown)
            self._forget(waiter)
            raise
        if not waiter.admitted:
            self._forget(waiter)
            raise self._shed("no slot came free in time")
        self.admitted_total += 1

    def _release(self) -> None:
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.admitted = True  # the slot passes to it: in_flight stays the same
            waiter.event.set()
        else:
            self.in_flight -= 1

    def _forget(self, waiter: _Waiter) -> None:
        if waiter.admitted:  # handed a slot it will not use: pass it on
            self._release()
        else:
            self._waiters.remove(waiter)

    def _shed(self, reason: str) -> OverloadedError:
        self.shed_total += 1
        return OverloadedError(reason, self.retry_after_s())


class _Admission:
    __slots__ = ("_control", "_start_by")

    def __init__(self, control: AdmissionControl, start_by: float) -> None:
        self._control = control
        self._start_by = start_by

    async def __aenter__(self) -> None:
        await self._control._acquire(self._start_by)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._control._release()
