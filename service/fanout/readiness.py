"""Readiness: can each source answer a trivial query right now?"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import trio

from .gather import run_with_deadline
from .outcome import SourceReport
from .source import Source

__all__ = ["check_sources"]

logger = logging.getLogger("service.fanout.readiness")


async def check_sources(
    sources: Sequence[Source], timeout_s: float, *, timeouts: Mapping[str, float] | None = None
) -> list[SourceReport]:
    """Run every source's ``check`` concurrently, each bounded by its own timeout.

    That is ``timeouts[source.name]`` when given, else ``timeout_s``: the same
    runner and deadline rules as a fan-out. A failed check is logged with its error.
    """
    own = timeouts or {}
    started = trio.current_time()
    reports: list[SourceReport | None] = [None] * len(sources)

    async def check_one(index: int, source: Source) -> None:
        deadline = started + own.get(source.name, timeout_s)
        _, report = await run_with_deadline(
            source.name, source.check, started=started, deadline=deadline
        )
        if report.failed:
            logger.warning(
                "source %s is not ready: outcome=%s error_type=%s elapsed_ms=%.1f error=%s",
                report.source,
                report.outcome.value,
                report.error_type or "-",
                report.elapsed_ms,
                report.error or "-",
            )
        reports[index] = report

    async with trio.open_nursery() as nursery:
        for index, source in enumerate(sources):
            nursery.start_soon(check_one, index, source)
    return [report for report in reports if report is not None]
