"""Overload, against the real service process: fast 503s, no reconnect storm, whole answers.

The fast subset of ``nox -s overload`` (which measures the targets over 1-128 clients).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from tests.support import ROOT
from tests.support.pg_admin import admin
from tests.support.service_runner import ServiceRunner

pytestmark = pytest.mark.integration


@asynccontextmanager
async def service(env: Mapping[str, str]) -> AsyncIterator[str]:
    runner = ServiceRunner(env)
    try:
        yield await trio.to_thread.run_sync(runner.wait_started)
    finally:
        with trio.move_on_after(30, shield=True):  # stop() kills after 15 s
            await trio.to_thread.run_sync(runner.stop)


async def sessions(dsn: str) -> int:
    """Sessions ever established to the database (each read opens one more)."""
    async with admin(dsn) as conn:
        return int(
            await conn.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        )


async def test_past_the_limit_and_queue_requests_are_shed_at_once_with_503_and_retry_after(
    pg_dsn: str,
) -> None:
    env = {
        "DATABASE_URL": pg_dsn,
        "SOURCE_TIMEOUT_S": "0.3",
        "ADMISSION_LIMIT": "2",
        "ADMISSION_QUEUE": "2",
    }
    answers: list[tuple[int, float, httpx.Response]] = []
    async with service(env) as url, admin(pg_dsn) as conn, conn.transaction():
        # data_2 hangs: each admitted request holds its slot for the whole 0.3 s.
        await conn.execute("LOCK TABLE data_2 IN ACCESS EXCLUSIVE MODE")
        limits = httpx.Limits(max_connections=12)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5) as client:

            async def get() -> None:
                began = trio.current_time()
                response = await client.get("/data")
                answers.append((response.status_code, trio.current_time() - began, response))

            await get()  # connections and pools warm
            answers.clear()
            async with trio.open_nursery() as nursery:
                for _ in range(12):
                    nursery.start_soon(get)
            health = (await client.get("/health")).json()
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 2 + [503] * 10
    for status, took, response in answers:
        if status == 200:
            assert len(response.json()) == 40  # data_2 timed out, the others answered
            continue
        assert took < 0.2  # shed at once, or after at most ADMISSION_MAX_WAIT_S in the queue
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["error"] == "overloaded"
        assert body["retry_after_s"] == 1
    assert health["admission"]["shed_total"] == 10
    assert health["admission"]["limit"] == 2
    assert (health["admission"]["in_flight"], health["admission"]["queued"]) == (0, 0)


async def test_interrupted_orm_reads_reuse_their_connections_instead_of_reconnecting(
    pg_dsn: str,
) -> None:
    """The ORM table is locked: every read of it is interrupted at its deadline. Each
    connection is reused once the server acknowledged the cancel, so in 200 requests
    the service opens no more than its pools hold (3 sources x 4)."""
    env = {"DATABASE_URL": pg_dsn, "SOURCE_TIMEOUT_S": "0.15", "POOL_MAX_SIZE": "4"}
    statuses: dict[int, int] = {}
    async with service(env) as url:
        # Counted from here: start-up's own sessions (schema, seeding) have ended by now.
        before = await sessions(pg_dsn)
        async with admin(pg_dsn) as conn, conn.transaction():
            await conn.execute("LOCK TABLE data_1 IN ACCESS EXCLUSIVE MODE")
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:

                async def worker() -> None:
                    for _ in range(25):
                        response = await client.get("/data")
                        status = response.status_code
                        statuses[status] = statuses.get(status, 0) + 1
                        if status == 200:
                            assert len(response.json()) == 40

                async with trio.open_nursery() as nursery:
                    for _ in range(8):
                        nursery.start_soon(worker)
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            whole = (await client.get("/data")).json()
    await trio.sleep(0.5)  # the service's sessions report themselves as they end
    opened = await sessions(pg_dsn) - before - 2  # less our own two sessions
    assert statuses.get(200, 0) + statuses.get(503, 0) == 200
    assert statuses.get(200, 0) >= 100
    assert len(whole) == 60  # the interrupted connections work: the next answer is whole
    assert opened <= 3 * 4, f"{opened} sessions opened"


async def test_four_times_the_load_keeps_answers_whole_and_connections_few(pg_dsn: str) -> None:
    """32 clients without faults, default settings: whole answers, no reconnects. The
    deadline targets themselves are measured by ``nox -s overload``, not here."""
    env = {"DATABASE_URL": pg_dsn, "SOURCE_TIMEOUT_S": "0.25", "POOL_MAX_SIZE": "10"}
    async with service(env) as url:
        before = await sessions(pg_dsn)  # start-up's own sessions have ended by now
        out = await trio.to_thread.run_sync(
            lambda: (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.overload_client",
                        url + "/data",
                        "--clients",
                        "32",
                        "--duration",
                        "3",
                        "--rows",
                        "60",
                        "--timeout",
                        "0.25",
                    ],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
        )
    await trio.sleep(0.5)
    opened = await sessions(pg_dsn) - before - 1
    result = json.loads(out)
    print(f"\n32 clients: {result}")
    assert result["errors"] == 0
    assert result["other_statuses"] == 0
    assert result["answers_200"] > 100
    assert result["incomplete_200"] <= result["answers_200"] * 0.05
    assert result["complete_on_time"] >= result["answers_200"] * 0.9
    assert opened <= 3 * 10, f"{opened} sessions opened"
