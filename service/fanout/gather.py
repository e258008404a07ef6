"""Scatter-gather: read every source at once, each under its own deadline, merge the rest."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import trio

from ..platform.log_throttle import LogThrottle
from .outcome import Outcome, SourceReport
from .rows import InvalidRowsError, Row, merge_rows, validate_rows
from .source import Source, SourceBusyError

__all__ = ["FanoutResult", "gather", "run_with_deadline"]

logger = logging.getLogger("service.fanout.gather")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FanoutResult:
    """The merged rows of the sources that answered in time, and a report per source."""

    rows: list[Row]
    reports: list[SourceReport]


async def gather(
    sources: Sequence[Source],
    timeout_s: float,
    *,
    timeouts: Mapping[str, float] | None = None,
    started: float | None = None,
    throttle: LogThrottle | None = None,
) -> FanoutResult:
    """Read all ``sources`` concurrently and merge what arrives in time.

    One trio nursery, one ``move_on_at`` cancel scope per source. Every source's
    deadline is ``timeout_s`` after ``started`` (a ``trio.current_time()``; default
    now: pass the request's arrival when it waited before the fan-out began), or its
    own timeout from ``timeouts`` (by source name). A source that raises, answers
    with malformed rows, or is late contributes nothing; it is logged (through
    ``throttle`` when given) and reported, and the others still count. The merged
    rows are sorted by id, stable in source order.
    """
    if started is None:
        started = trio.current_time()
    own = timeouts or {}
    answers: list[list[Row] | None] = [None] * len(sources)
    reports: list[SourceReport | None] = [None] * len(sources)

    async def read_one(index: int, source: Source) -> None:
        deadline = started + own.get(source.name, timeout_s)
        rows, report = await run_with_deadline(
            source.name, _fetch_valid_rows(source), started=started, deadline=deadline
        )
        answers[index] = rows
        reports[index] = report
        log_report(report, throttle)

    async with trio.open_nursery() as nursery:
        for index, source in enumerate(sources):
            nursery.start_soon(read_one, index, source)

    done = [report for report in reports if report is not None]
    return FanoutResult(
        rows=merge_rows(rows for rows in answers if rows is not None),
        reports=done,
    )


def _fetch_valid_rows(source: Source) -> Callable[[], Awaitable[list[Row]]]:
    async def fetch() -> list[Row]:
        return validate_rows(await source.fetch())

    return fetch


async def run_with_deadline(
    name: str, operation: Callable[[], Awaitable[T]], *, started: float, deadline: float
) -> tuple[T | None, SourceReport]:
    """Run one source's ``operation`` until ``deadline``; its value (``None`` unless it
    succeeded) and its report, whose ``elapsed_ms`` counts from ``started`` (the
    fan-out's start, so it reads as the time the caller waited for this source).

    Never raises anything but ``trio.Cancelled``: a failure is an outcome.
    """
    value: T | None = None
    outcome = Outcome.TIMEOUT
    error: Exception | None = None
    with trio.move_on_at(deadline):
        try:
            value = await operation()
        except InvalidRowsError as exc:
            outcome, error = Outcome.INVALID, exc
        except SourceBusyError as exc:
            outcome, error = Outcome.BUSY, exc
        except Exception as exc:  # a source's failure is missing data, never a 500
            outcome, error = Outcome.ERROR, exc
        else:
            outcome = Outcome.OK
    elapsed_ms = (trio.current_time() - started) * 1000.0
    if outcome is not Outcome.OK:
        value = None
    rows = len(value) if isinstance(value, list) else 0
    return value, SourceReport.of(name, outcome, elapsed_ms, rows=rows, error=error)


def log_report(report: SourceReport, throttle: LogThrottle | None = None) -> None:
    """A WARNING for a failed source (at most one per source and outcome per throttle
    interval, with a count of those held back); DEBUG for a good one."""
    if not report.failed:
        logger.debug(
            "source %s ok: rows=%d elapsed_ms=%.1f", report.source, report.rows, report.elapsed_ms
        )
        return
    held_back = 0
    if throttle is not None:
        admitted = throttle.admit((report.source, report.outcome))
        if admitted is None:
            return
        held_back = admitted
    logger.warning(
        "source %s failed: outcome=%s error_type=%s elapsed_ms=%.1f error=%s%s",
        report.source,
        report.outcome.value,
        report.error_type or "-",
        report.elapsed_ms,
        report.error or "-",
        f" (and {held_back} more like it since the last line)" if held_back else "",
    )
