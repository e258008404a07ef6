"""Statistics go out in batches every few seconds, never once per image, and a failing
stats endpoint costs nothing but a warning."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from service.images.stats import Counters, FakeStats, send_report, serve_stats


async def test_reports_are_sent_every_interval_not_per_image(
    autojump_clock: trio.abc.Clock,
) -> None:
    counters = Counters(started_at=trio.current_time())
    sink = FakeStats()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: serve_stats(sink, counters, interval_s=5.0))
        await trio.sleep(0.05)  # off the reporter's ticks, so no two wake at once
        for _ in range(120):  # 120 images over 12 s
            counters.ok += 1
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    await send_report(sink, counters, 1.0, final=True)
    assert [report["ok"] for report in sink.reports] == [50, 100, 120]
    assert [report["final"] for report in sink.reports] == [False, False, True]
    assert sink.reports[1]["recent_rate_per_s"] == pytest.approx(10.0)


class BrokenStats:
    async def send(self, report: dict[str, Any]) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


class HangingStats:
    async def send(self, report: dict[str, Any]) -> None:
        await trio.sleep_forever()


async def test_a_stats_endpoint_that_fails_or_hangs_is_counted_and_skipped(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    counters = Counters(started_at=trio.current_time())
    await send_report(BrokenStats(), counters, 1.0)
    start = trio.current_time()
    await send_report(HangingStats(), counters, 1.0)
    assert trio.current_time() - start == pytest.approx(1.0)
    assert counters.reports_failed == 2
    assert "stats report not sent" in caplog.text
