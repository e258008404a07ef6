"""Request coalescing: concurrent reads share the fan-out that is already in flight."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

__all__ = ["Coalescer"]

logger = logging.getLogger("service.fanout.coalesce")

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T]):
    """Runs at most one fan-out at a time; callers arriving meanwhile share its result.

    The fan-out runs in ``nursery`` (one that outlives the requests), not in the request
    that started it, so a client that disconnects does not cancel the read the others wait
    for. A
    caller that arrives while a fan-out is in flight gets that fan-out's result:
    it started at most one source timeout before the caller arrived, and it ends
    before the caller's own deadline would have. A caller arriving after it ended
    starts a new one: results are never reused after they are delivered.
    """

    def __init__(self, read: Callable[[float], Awaitable[T]], nursery: trio.Nursery) -> None:
        self._read = read
        self._nursery = nursery
        self._flight: _Flight[T] | None = None

    async def read(self, arrived: float) -> tuple[T, bool]:
        """The result of the fan-out in flight (or of a new one), and whether it was shared.

        ``arrived`` is the caller's arrival (``trio.current_time()``). A new fan-out
        counts its deadlines from it, not from when its task gets to run: the caller
        that started it must be answered by its own deadline too.
        """
        flight = self._flight
        joined = flight is not None
        if flight is None:
            flight = self._flight = _Flight[T]()
            self._nursery.start_soon(self._fly, flight, arrived)
        await flight.done.wait()
        if flight.error is not None:
            raise RuntimeError("the shared fan-out failed") from flight.error
        assert flight.result is not None
        return flight.result, joined

    async def _fly(self, flight: _Flight[T], started: float) -> None:
        try:
            flight.result = await self._read(started)
        except Exception as exc:  # gather() does not raise; if it ever does, waiters must know
            logger.exception("shared fan-out failed")
            flight.error = exc
        finally:
            if self._flight is flight:
                self._flight = None
            if flight.result is None and flight.error is None:
                flight.error = RuntimeError("the shared fan-out was cancelled (shutdown)")
            flight.done.set()
