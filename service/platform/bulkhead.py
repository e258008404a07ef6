"""A source's cap on reads in flight, so no read ever queues inside a driver's pool."""

from __future__ import annotations

import trio

__all__ = ["Bulkhead", "BulkheadSlot", "SourceBusyError"]


class SourceBusyError(Exception):
    """The source already has as many reads in flight as it can serve; this one was not tried."""


class Bulkhead:
    """At most ``capacity`` (the source's pool size) reads of one source hold a slot.

    A read waits for a slot here, in trio, where the fan-out's cancel scope bounds
    the wait exactly, not in the driver's pool behind the asyncio bridge. When
    ``max_waiting`` reads already wait, the next one fails at once with
    :class:`SourceBusyError`: it could only be served after several full rounds.
    :meth:`release` is synchronous, so the code that really returns a connection to
    its pool (possibly later, after a cancelled query was acknowledged) frees the slot.
    """

    __slots__ = ("_max_waiting", "_slots", "capacity")

    def __init__(self, capacity: int, *, max_waiting: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._slots = trio.Semaphore(capacity)
        self._max_waiting = 4 * capacity if max_waiting is None else max_waiting

    @property
    def in_use(self) -> int:
        """Slots held now (reads in flight, or connections not yet back in their pool)."""
        return self.capacity - self._slots.value

    @property
    def waiting(self) -> int:
        """Reads waiting for a slot now."""
        return self._slots.statistics().tasks_waiting

    async def acquire(self) -> None:
        """Take a slot, waiting for one if needed; :class:`SourceBusyError` if too many wait."""
        if self._slots.value == 0 and self.waiting >= self._max_waiting:
            raise SourceBusyError(
                f"{self.capacity} reads in flight and {self.waiting} waiting (the source's cap)"
            )
        await self._slots.acquire()

    def release(self) -> None:
        """Give a slot back (synchronous: callable from the asyncio side of the bridge)."""
        self._slots.release()

    async def __aenter__(self) -> None:
        """``async with bulkhead:`` holds a slot for the block (when the read's resources are
        back by the block's end, as an HTTP source's connection is)."""
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class BulkheadSlot:
    """One slot of a :class:`Bulkhead`, released exactly once: when the read ends, or later
    by whatever takes over its connection (a background release after a cancel)."""

    __slots__ = ("_bulkhead", "_kept", "_released")

    def __init__(self, bulkhead: Bulkhead) -> None:
        self._bulkhead = bulkhead
        self._kept = False
        self._released = False

    def keep(self) -> None:
        """The connection lives on in the background: hold the slot until :meth:`release`."""
        self._kept = True

    def release_unless_kept(self, _done: object = None) -> None:
        """Release, unless :meth:`keep` was called (a done-callback of the read's task)."""
        if not self._kept:
            self.release()

    def release(self, _done: object = None) -> None:
        """Give the slot back; only the first call counts."""
        if not self._released:
            self._released = True
            self._bulkhead.release()
