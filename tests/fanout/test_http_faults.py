"""HTTP sources against real misbehaving servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from service.fanout.gather import FanoutResult, gather
from service.fanout.http_source import HttpJsonSource, open_http_client
from service.fanout.outcome import Outcome
from tests.support.json_server import JsonServer
from tests.support.tcp_proxy import closed_port

ROWS: list[dict[str, Any]] = [{"id": 3, "name": "Test 3"}, {"id": 1, "name": "Test 1"}]
HEALTHY = sorted(ROWS, key=lambda row: row["id"])
LIMIT = 1024 * 1024
SLACK_S = 0.05

#: path on the misbehaving server -> how the source must end
FAULTS = {
    "/slow": Outcome.TIMEOUT,
    "/hang": Outcome.TIMEOUT,
    "/trickle": Outcome.TIMEOUT,
    "/error": Outcome.ERROR,
    "/garbage": Outcome.INVALID,
    "/object": Outcome.INVALID,
    "/bad-item": Outcome.INVALID,
    "/huge": Outcome.ERROR,
    "/endless": Outcome.ERROR,
    "/redirect": Outcome.ERROR,
    "refused": Outcome.ERROR,
}


@asynccontextmanager
async def json_server(slow_s: float) -> AsyncIterator[tuple[JsonServer, httpx.AsyncClient]]:
    server = JsonServer(ROWS, slow_s=slow_s)
    async with trio.open_nursery() as nursery, open_http_client(max_connections=100) as client:
        await nursery.start(server.serve)
        yield server, client
        nursery.cancel_scope.cancel()


def http_source(name: str, url: str, client: httpx.AsyncClient, **kwargs: Any) -> HttpJsonSource:
    return HttpJsonSource(name, url, client, max_body_bytes=LIMIT, **kwargs)


def fault_url(server: JsonServer, fault: str) -> str:
    if fault == "refused":
        return f"http://127.0.0.1:{closed_port()}/healthy"
    return server.url(fault)


async def timed(sources: list[HttpJsonSource], timeout_s: float) -> tuple[FanoutResult, float]:
    started = trio.current_time()
    result = await gather(sources, timeout_s)
    return result, trio.current_time() - started


async def test_every_fault_at_once_with_the_default_2s_timeout() -> None:
    async with json_server(slow_s=2.5) as (server, client):
        sources = [http_source("healthy", server.url("/healthy"), client)]
        sources += [
            http_source(f"f{i}", fault_url(server, f), client) for i, f in enumerate(FAULTS)
        ]
        result, elapsed = await timed(sources, 2.0)
    assert elapsed < 2.0 + SLACK_S
    assert result.rows == HEALTHY
    got = {report.source: report.outcome for report in result.reports}
    assert got == {"healthy": Outcome.OK} | {f"f{i}": o for i, o in enumerate(FAULTS.values())}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_one_fault_beside_a_healthy_source(fault: str) -> None:
    timeout_s = 0.5
    async with json_server(slow_s=1.0) as (server, client):
        sources = [
            http_source("healthy", server.url("/healthy"), client),
            http_source("faulty", fault_url(server, fault), client),
        ]
        result, elapsed = await timed(sources, timeout_s)
    assert elapsed < timeout_s + SLACK_S
    assert result.rows == HEALTHY
    assert result.reports[1].outcome is FAULTS[fault]


async def test_redirect_is_followed_when_the_source_says_so() -> None:
    async with json_server(slow_s=1.0) as (server, client):
        source = http_source("moved", server.url("/redirect"), client, follow_redirects=True)
        result, _ = await timed([source], 0.5)
    assert result.rows == HEALTHY
    assert server.requests == ["/redirect", "/healthy"]


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/deflate-raw"])
async def test_compressed_body_off_the_network_is_decoded(path: str) -> None:
    async with json_server(slow_s=1.0) as (server, client):
        result, _ = await timed([http_source("packed", server.url(path), client)], 0.5)
    assert result.reports[0].outcome is Outcome.OK
    assert result.rows == HEALTHY


async def test_cancelled_requests_do_not_leak_the_client_pool() -> None:
    """A burst of requests cut off by the deadline, then a normal one: it must be fast."""
    server = JsonServer(ROWS, slow_s=10.0)
    async with trio.open_nursery() as nursery, open_http_client(max_connections=4) as client:
        await nursery.start(server.serve)
        stuck = [
            http_source(f"stuck{i}", server.url(path), client)
            for i, path in enumerate(["/hang", "/slow", "/trickle", "/endless"] * 5)
        ]
        for _ in range(5):
            async with trio.open_nursery() as burst:
                for i in range(0, len(stuck), 4):
                    burst.start_soon(gather, stuck[i : i + 4], 0.05)
        healthy = [http_source("healthy", server.url("/healthy"), client)]
        result, elapsed = await timed(healthy, 1.0)
        nursery.cancel_scope.cancel()
    assert result.rows == HEALTHY
    assert elapsed < 0.2


async def test_connections_are_reused_between_requests() -> None:
    server = JsonServer(ROWS)
    async with trio.open_nursery() as nursery, open_http_client(max_connections=4) as client:
        await nursery.start(server.serve)
        source = http_source("healthy", server.url("/healthy"), client)
        for _ in range(5):
            await source.fetch()
        nursery.cancel_scope.cancel()
    assert server.requests == ["/healthy"] * 5
    assert server.connections == 1


async def test_a_hung_source_does_not_starve_a_healthy_one_of_connections(tmp_path: Any) -> None:
    """Each HTTP source has its own pool: requests stuck on /hang leave /healthy its own."""
    from service.fanout.backends import open_backends
    from service.platform.settings import Settings

    server = JsonServer(ROWS)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        config = tmp_path / "sources.toml"
        config.write_text(
            f'[[source]]\nname = "hung"\nkind = "http"\nurl = "{server.url("/hang")}"\n'
            f'[[source]]\nname = "healthy"\nkind = "http"\nurl = "{server.url("/healthy")}"\n'
        )
        settings = Settings.from_env(
            {"SOURCES_FILE": str(config), "HTTP_MAX_CONNECTIONS": "4", "SOURCE_TIMEOUT_S": "0.5"}
        )
        results: list[FanoutResult] = []
        async with open_backends(settings) as backends:

            async def request() -> None:
                results.append(await gather(backends.sources, settings.source_timeout_s))

            async with trio.open_nursery() as requests:
                for _ in range(6):  # more than the pool size, all at once
                    requests.start_soon(request)
        nursery.cancel_scope.cancel()
    assert [r.rows for r in results] == [HEALTHY] * 6
    assert {r.reports[0].outcome for r in results} == {Outcome.TIMEOUT}
