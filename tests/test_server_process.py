"""The real thing: ``python -m service serve`` (hypercorn, trio worker) over HTTP."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
import trio_asyncio
import triopg

from service.platform.aio import use_loop

from .service_runner import ServiceRunner
from .tcp_proxy import closed_port

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.5
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
