"""The real thing: ``python -m service serve`` (hypercorn, trio worker) over HTTP."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest
import trio
import trio_asyncio
import triopg

from service.platform.aio import use_loop
from tests.support import ROOT
from tests.support.service_runner import ServiceRunner
from tests.support.tcp_proxy import closed_port

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.5
EXAMPLES = ROOT / "examples"


@asynccontextmanager
async def running_service(
    env: Mapping[str, str], *, workers: int = 1, port: int = 0, extra_args: Sequence[str] = ()
) -> AsyncIterator[ServiceRunner]:
    """Start the service (a free port unless given) and yield it; SIGTERM it on the way out."""
    runner = ServiceRunner(env, workers=workers, port=port, extra_args=extra_args)
    try:
        await trio.to_thread.run_sync(runner.wait_started)
        yield runner
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(runner.stop)


async def stopped(runner: ServiceRunner) -> int:
    """SIGTERM the service and wait for it; its exit code."""
    code, _took = await trio.to_thread.run_sync(runner.stop)
    return code


async def test_served_over_http_with_the_60_rows_and_the_deadline(
    pg_dsn: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": pg_dsn, "SOURCE_TIMEOUT_S": str(TIMEOUT_S)}
    async with (
        running_service(env, workers=2) as service,
        httpx.AsyncClient(base_url=service.url) as client,
    ):
        response = await client.get("/data")
        assert response.status_code == 200
        assert [row["id"] for row in response.json()] == list(range(1, 61))
        assert response.headers["server-timing"].count('desc="ok"') == 3

        head = await client.head("/data")
        assert (head.status_code, head.content) == (200, b"")
        assert (await client.get("/health")).json()["status"] == "ok"
        assert (await client.get("/ready")).json()["status"] == "ready"
        missing = await client.get("/no/such/path")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        assert (await client.post("/data")).status_code == 405

        async with trio_asyncio.open_loop() as loop:
            with use_loop(loop):
                async with triopg.connect(pg_dsn) as admin, admin.transaction():
                    await admin.execute("LOCK TABLE data_3 IN ACCESS EXCLUSIVE MODE")
                    started = trio.current_time()
                    late = await client.get("/data")
                    elapsed = trio.current_time() - started
        assert late.status_code == 200
        assert elapsed < TIMEOUT_S + 0.05
        assert [row["id"] for row in late.json()] == [*range(1, 21), *range(31, 51)]
        assert "data_3;dur=" in late.headers["server-timing"]
        assert 'desc="timeout"' in late.headers["server-timing"]

        with trio.fail_after(10):
            assert await stopped(service) == 0


async def test_without_database_url_the_demo_runs_on_an_embedded_postgres(tmp_path: Path) -> None:
    env = {"EMBEDDED_PG_DIR": str(tmp_path / "pgdata")}
    async with running_service(env) as service:
        async with httpx.AsyncClient(base_url=service.url) as client:
            response = await client.get("/data")
        assert await stopped(service) == 0
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == list(range(1, 61))
    log = service.output.decode()
    assert "embedded PostgreSQL ready" in log
    assert "stopping embedded PostgreSQL" in log


async def test_sigterm_lets_the_in_flight_request_finish(pg_dsn: str) -> None:
    env = {"DATABASE_URL": pg_dsn, "SOURCE_TIMEOUT_S": str(TIMEOUT_S), "SHUTDOWN_GRACE_S": "5"}
    responses: list[httpx.Response] = []
    async with (
        running_service(env) as service,
        httpx.AsyncClient(base_url=service.url) as client,
        trio_asyncio.open_loop() as loop,
    ):
        with use_loop(loop):
            async with triopg.connect(pg_dsn) as admin, admin.transaction():
                await admin.execute("LOCK TABLE data_2 IN ACCESS EXCLUSIVE MODE")
                async with trio.open_nursery() as nursery:

                    async def request() -> None:
                        responses.append(await client.get("/data"))

                    nursery.start_soon(request)
                    await trio.sleep(TIMEOUT_S / 2)  # the request is now waiting on data_2
                    service.process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            assert await trio.to_thread.run_sync(service.process.wait) == 0
    [response] = responses
    assert response.status_code == 200
    assert len(response.json()) == 40
    assert "data_2;dur=" in response.headers["server-timing"]


async def test_http_demo_reads_its_three_sources_from_the_service_itself(tmp_path: Path) -> None:
    """The HTTP-sourced demo: the shipped example config, on a free port instead of 8000."""
    port = closed_port()
    example = (EXAMPLES / "http-sources.toml").read_text()
    config = tmp_path / "http-sources.toml"
    config.write_text(example.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    env = {"EMBEDDED_PG_DIR": str(tmp_path / "pg")}
    async with (
        running_service(env, port=port, extra_args=["--sources", str(config)]) as service,
        httpx.AsyncClient(base_url=service.url) as client,
    ):
        response = await client.get("/data")
        demo = await client.get("/demo/data_2.json")
        missing = await client.get("/demo/data_9.json")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == list(range(1, 61))
    assert response.headers["server-timing"].count('desc="ok"') == 3
    assert [row["id"] for row in demo.json()] == [*range(11, 21), *range(41, 51)]
    assert missing.status_code == 404


async def test_index_and_bootstrap_are_served_by_the_real_process(pg_dsn: str) -> None:
    """The index page and Bootstrap's CSS, from the pip-installed package (no network)."""
    env = {"DATABASE_URL": pg_dsn}
    async with (
        running_service(env) as service,
        httpx.AsyncClient(base_url=service.url) as client,
    ):
        index = await client.get("/", headers={"Accept": "text/html"})
        css = await client.get("/static/bootstrap/css/bootstrap.min.css")
    assert index.status_code == 200
    assert 'href="/data"' in index.text
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert len(css.content) > 100_000
    assert b"Bootstrap" in css.content[:200]


#: What a worker logs when a server it uses goes away under it (coredis, asyncpg, ours).
LOST_SERVER = re.compile(
    rb"closed unexpectedly|retry|refused|reset by peer|connection.*(lost|error)|terminat"
    rb"|traceback|exception|\b(WARNING|ERROR|CRITICAL)\b",
    re.IGNORECASE,
)


def _embedded_servers(runner: ServiceRunner, pg_dir: Path) -> list[psutil.Process]:
    """The embedded valkey (a child of ``serve``) and PostgreSQL's postmaster (pg_ctl starts
    it in a session of its own: its pid is in the data directory's postmaster.pid)."""
    valkeys = [
        child
        for child in psutil.Process(runner.process.pid).children()
        if "valkey-server" in child.name()
    ]
    postmaster = psutil.Process(int((pg_dir / "postmaster.pid").read_text().split()[0]))
    return [*valkeys, postmaster]


def test_ctrl_c_to_the_process_group_stops_the_workers_before_valkey_and_postgres(
    tmp_path: Path,
) -> None:
    """A terminal's Ctrl-C signals every process of its foreground group at once. The embedded
    servers must not be among them: they stop after the workers that use them, so a stopping
    worker never finds Redis or PostgreSQL gone (before: valkey died at once and both workers
    logged coredis's "Connection closed unexpectedly!" and "Retry attempt 1")."""
    pg_dir = tmp_path / "pg"
    env = {
        "EMBEDDED_PG_DIR": str(pg_dir),
        "DATA_DIR": str(tmp_path / "data"),
        "SEED_USERS": "0",
        "ADMIN_PASSWORD": "admin password for the test",
    }
    runner = ServiceRunner(env, workers=2, own_group=True, drop_env=["REDIS_URL"])
    try:
        runner.wait_started(120)
        servers = _embedded_servers(runner, pg_dir)
        assert [s.name() for s in servers] == ["valkey-server", "postgres"]
        with httpx.Client(base_url=runner.url, timeout=10) as client:
            assert client.get("/data").status_code == 200
            assert client.get("/search", headers={"Accept": "text/html"}).status_code == 200
        time.sleep(1.0)  # both workers serving, their Redis and database connections open
        logged_before = len(runner.output)
        started = time.monotonic()
        os.killpg(runner.process.pid, signal.SIGINT)  # the whole group, as a terminal does
        code = runner.process.wait(30)
        took = time.monotonic() - started
    finally:
        if runner.process.poll() is None:
            os.killpg(runner.process.pid, signal.SIGKILL)
        runner.stop()
    stopping = bytes(runner.output[logged_before:])
    lost = [line for line in stopping.splitlines() if LOST_SERVER.search(line)]
    assert lost == [], stopping.decode()
    assert b"stopping embedded Redis" in stopping
    assert code == 0
    assert took < 10.0
    _gone, alive = psutil.wait_procs(servers, timeout=5)
    assert alive == []
