"""Step 4: statistics. The pipeline bumps plain counters; a reporter sends a snapshot to the
stats endpoint every few seconds (and a last one at the end), never once per image. A
report that fails is logged and dropped: the next one carries the totals."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson
import trio

__all__ = ["Counters", "FakeStats", "HttpStats", "StatsSink", "serve_stats"]

logger = logging.getLogger("service.images.stats")


@dataclass
class Counters:
    """The run's totals so far (no I/O). ``skipped`` are images the journal had already."""

    started_at: float
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    remote_failed: int = 0
    retries: int = 0
    reports_failed: int = 0
    unreadable_dirs: int = 0  # directories the walk could not list (skipped)
    _last_at: float = field(default=0.0, repr=False)
    _last_done: int = field(default=0, repr=False)

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def snapshot(self, now: float, *, final: bool = False) -> dict[str, Any]:
        """One report: totals, this run's mean rate, and the rate since the last report."""
        elapsed = max(now - self.started_at, 1e-9)
        since = max(now - (self._last_at or self.started_at), 1e-9)
        report = {
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "remote_failed": self.remote_failed,
            "retries": self.retries,
            "unreadable_dirs": self.unreadable_dirs,
            "elapsed_s": round(elapsed, 3),
            "rate_per_s": round(self.done / elapsed, 2),
            "recent_rate_per_s": round((self.done - self._last_done) / since, 2),
            "final": final,
        }
        self._last_at, self._last_done = now, self.done
        return report


class StatsSink(Protocol):
    """Where reports go; raises ``OSError`` or ``httpx.HTTPError`` when it cannot take one."""

    async def send(self, report: dict[str, Any]) -> None: ...


class HttpStats:
    """POSTs each report as JSON to ``url``."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url

    async def send(self, report: dict[str, Any]) -> None:
        response = await self._client.post(
            self._url, content=orjson.dumps(report), headers={"content-type": "application/json"}
        )
        response.raise_for_status()


@dataclass
class FakeStats:
    """Keeps the reports in memory."""

    reports: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, report: dict[str, Any]) -> None:
        self.reports.append(report)


async def send_report(
    sink: StatsSink, counters: Counters, deadline_s: float, *, final: bool = False
) -> None:
    """Send one snapshot within ``deadline_s``; a failure is counted and logged."""
    report = counters.snapshot(trio.current_time(), final=final)
    with trio.move_on_after(deadline_s) as scope:
        try:
            await sink.send(report)
        except (OSError, httpx.HTTPError) as exc:
            counters.reports_failed += 1
            logger.warning("stats report not sent: %s", exc)
    if scope.cancelled_caught:
        counters.reports_failed += 1
        logger.warning("stats report not sent within %.1f s", deadline_s)


async def serve_stats(
    sink: StatsSink, counters: Counters, *, interval_s: float = 5.0, deadline_s: float = 2.0
) -> None:
    """Report every ``interval_s`` until cancelled (the caller sends the final report)."""
    while True:
        await trio.sleep(interval_s)
        await send_report(sink, counters, deadline_s)
