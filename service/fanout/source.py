"""The seam between the fan-out and the places it reads: one small Protocol, one fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import trio
import trio.lowlevel

from ..platform.bulkhead import SourceBusyError

__all__ = ["FakeSource", "Source", "SourceBusyError"]


@runtime_checkable
class Source(Protocol):
    """A place the fan-out reads rows from.

    ``fetch`` returns raw rows (mappings with ``id`` and ``name``); the fan-out
    validates them. It must honour trio cancellation promptly: every cleanup it
    does after a cancel is bounded, so one stuck source cannot hold a request.
    """

    @property
    def name(self) -> str:
        """A short token naming the source (used in logs and Server-Timing)."""
        ...

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        """Read all rows of the source."""
        ...

    async def check(self) -> None:
        """Raise if the source cannot answer a trivial query (readiness)."""
        ...


class FakeSource:
    """An in-memory :class:`Source` for tests: fixed rows, an optional delay, an optional error."""

    def __init__(
        self,
        name: str,
        rows: Sequence[Mapping[str, Any]] = (),
        *,
        delay_s: float = 0.0,
        error: BaseException | None = None,
    ) -> None:
        self._name = name
        self.rows = list(rows)
        self.delay_s = delay_s
        self.error = error
        self.calls = 0
        self.cancelled = 0

    @property
    def name(self) -> str:
        return self._name

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        self.calls += 1
        try:
            await trio.sleep(self.delay_s)
        except trio.Cancelled:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return list(self.rows)

    async def check(self) -> None:
        await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
