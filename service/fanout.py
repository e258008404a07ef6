"""Scatter-gather: read every source at once, each under its own deadline, merge the rest."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

from .outcome import Outcome, SourceReport
from .rows import InvalidRowsError, Row, merge_rows, validate_rows
from .source import Source

__all__ = ["FanoutResult", "gather"]

logger = logging.getLogger("service.fanout")


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
) -> FanoutResult:
    """Read all ``sources`` concurrently and merge what arrives in time.

    One trio nursery, one ``move_on_at`` cancel scope per source. Every source's
    deadline is ``timeout_s`` after the start, or its own timeout from
    ``timeouts`` (by source name). A source that raises, answers with malformed
    rows, or is late contributes nothing; it is logged and reported, and the others
    still count. The merged rows are sorted by id, stable in source order.
    """
    started = trio.current_time()
    own = timeouts or {}
    answers: list[list[Row] | None] = [None] * len(sources)
    reports: list[SourceReport | None] = [None] * len(sources)

    async def read_one(index: int, source: Source) -> None:
        deadline = started + own.get(source.name, timeout_s)
        rows, report = await _read_source(source, deadline)
        answers[index] = rows
        reports[index] = report

    async with trio.open_nursery() as nursery:
        for index, source in enumerate(sources):
            nursery.start_soon(read_one, index, source)

    done = [report for report in reports if report is not None]
    return FanoutResult(
        rows=merge_rows(rows for rows in answers if rows is not None),
        reports=done,
    )


async def _read_source(source: Source, deadline: float) -> tuple[list[Row] | None, SourceReport]:
    """Run one source under ``deadline``; never raises anything but trio.Cancelled."""
    started = trio.current_time()
    rows: list[Row] | None = None
    outcome = Outcome.TIMEOUT
    error: Exception | None = None
    with trio.move_on_at(deadline):
        try:
            rows = validate_rows(await source.fetch())
        except InvalidRowsError as exc:
            outcome, error = Outcome.INVALID, exc
        except Exception as exc:  # a source's failure is missing data, never a 500
            outcome, error = Outcome.ERROR, exc
        else:
            outcome = Outcome.OK
    elapsed_ms = (trio.current_time() - started) * 1000.0
    if outcome is not Outcome.OK:
        rows = None
    report = SourceReport.of(
        source.name,
        outcome,
        elapsed_ms,
        rows=len(rows) if rows is not None else 0,
        error=error,
    )
    _log_report(report)
    return rows, report


def _log_report(report: SourceReport) -> None:
    if report.failed:
        logger.warning(
            "source %s failed: outcome=%s error_type=%s elapsed_ms=%.1f error=%s",
            report.source,
            report.outcome.value,
            report.error_type or "-",
            report.elapsed_ms,
            report.error or "-",
        )
    else:
        logger.debug(
            "source %s ok: rows=%d elapsed_ms=%.1f", report.source, report.rows, report.elapsed_ms
        )
