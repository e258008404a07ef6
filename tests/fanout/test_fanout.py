"""The scatter-gather rules, on in-memory fakes and trio's virtual clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from service.fanout.gather import gather
from service.fanout.outcome import Outcome
from service.fanout.source import FakeSource


def rows(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Test {i}"} for i in ids]


async def test_rows_of_all_sources_are_merged_sorted_by_id() -> None:
    result = await gather(
        [FakeSource("a", rows(31, 1)), FakeSource("b", rows(11, 41)), FakeSource("c", rows(21))],
        timeout_s=2.0,
    )
    assert [row["id"] for row in result.rows] == [1, 11, 21, 31, 41]
    assert [report.outcome for report in result.reports] == [Outcome.OK] * 3
    assert [report.rows for report in result.reports] == [2, 2, 1]


async def test_failing_source_is_missing_data_and_others_still_answer() -> None:
    result = await gather(
        [FakeSource("a", rows(1)), FakeSource("b", rows(2), error=ConnectionError("down"))],
        timeout_s=2.0,
    )
    assert result.rows == rows(1)
    failed = result.reports[1]
    assert (failed.source, failed.outcome, failed.error_type) == (
        "b",
        Outcome.ERROR,
        "ConnectionError",
    )


async def test_malformed_rows_drop_the_whole_source() -> None:
    bad: list[dict[str, Any]] = [{"id": 2, "name": "fine"}, {"id": None, "name": "null id"}]
    result = await gather([FakeSource("a", rows(1)), FakeSource("b", bad)], timeout_s=2.0)
    assert result.rows == rows(1)
    assert result.reports[1].outcome is Outcome.INVALID
    assert result.reports[1].rows == 0


async def test_equal_ids_from_different_sources_are_all_kept_in_source_order() -> None:
    first = [{"id": 7, "name": "first"}]
    second = [{"id": 7, "name": "second"}]
    result = await gather([FakeSource("a", first), FakeSource("b", second)], timeout_s=2.0)
    assert result.rows == [{"id": 7, "name": "first"}, {"id": 7, "name": "second"}]


async def test_all_sources_failing_gives_an_empty_answer() -> None:
    result = await gather(
        [FakeSource("a", error=RuntimeError("x")), FakeSource("b", [{"id": "1", "name": "x"}])],
        timeout_s=2.0,
    )
    assert result.rows == []
    assert [r.outcome for r in result.reports] == [Outcome.ERROR, Outcome.INVALID]


async def test_no_sources_gives_an_empty_answer() -> None:
    result = await gather([], timeout_s=2.0)
    assert (result.rows, result.reports) == ([], [])


async def test_slow_source_is_dropped_after_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = FakeSource("slow", rows(2), delay_s=5.0)
    started = trio.current_time()
    result = await gather([FakeSource("fast", rows(1), delay_s=0.5), slow], timeout_s=2.0)
    elapsed = trio.current_time() - started
    assert elapsed == pytest.approx(2.0)
    assert result.rows == rows(1)
    assert slow.cancelled == 1
    timeout = result.reports[1]
    assert timeout.outcome is Outcome.TIMEOUT
    assert timeout.elapsed_ms == pytest.approx(2000.0)
    assert result.reports[0].elapsed_ms == pytest.approx(500.0)


async def test_source_answering_just_before_deadline_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result = await gather([FakeSource("edge", rows(1), delay_s=1.999)], timeout_s=2.0)
    assert result.rows == rows(1)


async def test_fanout_returns_as_soon_as_all_sources_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = trio.current_time()
    await gather(
        [FakeSource("a", rows(1), delay_s=0.1), FakeSource("b", rows(2), delay_s=0.3)], 2.0
    )
    assert trio.current_time() - started == pytest.approx(0.3)


async def test_sources_run_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    sources = [FakeSource(f"s{i}", rows(i), delay_s=1.5) for i in range(10)]
    started = trio.current_time()
    result = await gather(sources, timeout_s=2.0)
    assert trio.current_time() - started == pytest.approx(1.5)
    assert len(result.rows) == 10


async def test_outer_cancellation_is_not_swallowed(autojump_clock: trio.testing.MockClock) -> None:
    source = FakeSource("slow", rows(1), delay_s=5.0)
    with trio.move_on_after(0.5) as scope:
        await gather([source], timeout_s=2.0)
        pytest.fail("gather returned although its caller was cancelled")
    assert scope.cancelled_caught
    assert source.cancelled == 1


async def test_every_failed_source_is_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="service.fanout.gather")
    await gather(
        [
            FakeSource("ok_source", rows(1)),
            FakeSource("late", rows(2), delay_s=3.0),
            FakeSource("broken", error=OSError("refused")),
            FakeSource("garbled", [{"id": 1}]),
        ],
        timeout_s=2.0,
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    late, broken, garbled = sorted(
        warnings, key=lambda m: ["late", "broken", "garbled"].index(m.split()[1])
    )
    assert "outcome=timeout" in late
    assert "elapsed_ms=2000.0" in late
    assert "outcome=error" in broken
    assert "error_type=OSError" in broken
    assert "refused" in broken
    assert "outcome=invalid" in garbled
    assert "error_type=InvalidRowsError" in garbled
    assert any(
        "ok_source ok" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG
    )


async def test_a_source_can_have_its_own_deadline(autojump_clock: trio.testing.MockClock) -> None:
    patient = FakeSource("patient", rows(1), delay_s=3.0)
    hasty = FakeSource("hasty", rows(2), delay_s=0.7)
    started = trio.current_time()
    result = await gather(
        [patient, hasty, FakeSource("default", rows(3), delay_s=2.5)],
        timeout_s=2.0,
        timeouts={"patient": 4.0, "hasty": 0.5},
    )
    assert trio.current_time() - started == pytest.approx(3.0)
    assert result.rows == rows(1)
    assert [r.outcome for r in result.reports] == [Outcome.OK, Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert [r.elapsed_ms for r in result.reports] == pytest.approx([3000.0, 500.0, 2000.0])


async def test_deadline_and_durations_count_from_the_given_start_not_from_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A request that waited 0.3 s before its fan-out began: its sources get what is left of
    its deadline, and Server-Timing shows the time since the request's start."""
    called = trio.current_time()
    result = await gather(
        [FakeSource("quick", rows(1), delay_s=0.2), FakeSource("hung", rows(2), delay_s=60)],
        timeout_s=2.0,
        started=called - 0.3,
    )
    assert trio.current_time() - called == pytest.approx(1.7)
    assert [r.elapsed_ms for r in result.reports] == pytest.approx([500.0, 2000.0])
    assert [r.outcome for r in result.reports] == [Outcome.OK, Outcome.TIMEOUT]


async def test_repeated_failures_of_a_source_are_logged_once_per_interval_with_a_count(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    from service.platform.log_throttle import LogThrottle

    throttle = LogThrottle(10.0, trio.current_time)
    broken = FakeSource("broken", error=OSError("refused"))
    for _ in range(5):  # at 0, 3, 6, 9 and 12 s
        await gather([broken], timeout_s=2.0, throttle=throttle)
        await trio.sleep(3.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "more like it" not in warnings[0]
    assert warnings[1].endswith("(and 3 more like it since the last line)")
