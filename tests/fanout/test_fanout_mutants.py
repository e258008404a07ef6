"""Fan-out rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from service.fanout.gather import log_report, run_with_deadline
from service.fanout.outcome import Outcome, SourceReport
from service.platform.log_throttle import LogThrottle


async def test_a_failed_operation_gives_no_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fail() -> list[int]:
        raise ValueError("boom")

    value, report = await run_with_deadline("a", fail, started=0.0, deadline=1.0)
    assert value is None
    assert (report.outcome, report.error_type, report.error) == (
        Outcome.ERROR,
        "ValueError",
        "boom",
    )


async def test_a_late_operation_reports_no_error(autojump_clock: trio.testing.MockClock) -> None:
    async def hang() -> list[int]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    value, report = await run_with_deadline("a", hang, started=0.0, deadline=1.0)
    assert value is None
    assert (report.outcome, report.error_type, report.error) == (Outcome.TIMEOUT, None, None)


def test_a_good_source_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="service.fanout.gather")
    log_report(SourceReport("a", Outcome.OK, 12.34, rows=3))
    assert [r.getMessage() for r in caplog.records] == ["source a ok: rows=3 elapsed_ms=12.3"]


def test_a_failure_without_an_error_logs_dashes_and_no_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_report(SourceReport("a", Outcome.TIMEOUT, 2000.0))
    assert [r.getMessage() for r in caplog.records] == [
        "source a failed: outcome=timeout error_type=- elapsed_ms=2000.0 error=-"
    ]


def test_the_throttle_keeps_each_source_apart(caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(60.0, clock=lambda: 0.0)
    log_report(SourceReport("a", Outcome.TIMEOUT, 1.0), throttle)
    log_report(SourceReport("b", Outcome.TIMEOUT, 1.0), throttle)
    assert [r.getMessage().split(" ")[1] for r in caplog.records] == ["a", "b"]
