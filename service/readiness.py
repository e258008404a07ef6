"""Readiness: can each source answer a trivial query right now?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import trio

from .outcome import Outcome, SourceReport
from .source import Source

__all__ = ["check_sources"]


async def check_sources(
    sources: Sequence[Source], timeout_s: float, *, timeouts: Mapping[str, float] | None = None
) -> list[SourceReport]:
    """Run every source's ``check`` concurrently, each bounded by its own timeout.

    That is ``timeouts[source.name]`` when given, else ``timeout_s``.
    """
    own = timeouts or {}
    reports: list[SourceReport | None] = [None] * len(sources)

    async def check_one(index: int, source: Source) -> None:
        started = trio.current_time()
        outcome, error = Outcome.TIMEOUT, None
        with trio.move_on_after(own.get(source.name, timeout_s)):
            try:
                await source.check()
            except Exception as exc:
                outcome, error = Outcome.ERROR, exc
            else:
                outcome = Outcome.OK
        elapsed_ms = (trio.current_time() - started) * 1000.0
        reports[index] = SourceReport.of(source.name, outcome, elapsed_ms, error=error)

    async with trio.open_nursery() as nursery:
        for index, source in enumerate(sources):
            nursery.start_soon(check_one, index, source)
    return [report for report in reports if report is not None]
