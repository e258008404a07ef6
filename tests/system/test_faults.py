"""The fault suite: one bad source never hurts the answer.

Each case runs against the real service process (hypercorn, trio worker) and a real
PostgreSQL. The victim source reaches PostgreSQL through a fault-injecting TCP proxy
(tests/support/tcp_proxy.py) or has its table tampered with; the other sources are healthy.
Every case: 200, exactly the healthy sources' rows, sorted, within timeout + 50 ms,
and the victim's Server-Timing entry says how it failed. ``nox -s tests`` runs the
data_2 (raw SQL) cases; ``nox -s faults`` also runs them with the ORM source as victim,
plus the load, disconnect and shutdown tests (tests/system/test_faults_load.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio

from tests.support.pg_activity import assert_query_gone, query_gone_bounds, service_queries_on
from tests.support.pg_admin import admin
from tests.support.service_runner import ServiceRunner
from tests.support.tcp_proxy import FaultProxy, Upstream, closed_port

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TIMEOUT_S = 0.5
SLACK_S = 0.05
IDS = {
    "data_1": [*range(1, 11), *range(31, 41)],
    "data_2": [*range(11, 21), *range(41, 51)],
    "data_3": [*range(21, 31), *range(51, 61)],
}


@dataclass
class Lab:
    """The service under test, with its victim source behind a proxy on a fixed port."""

    victim: str
    proxy_port: int
    pg_dsn: str
    url: str
    runner: ServiceRunner

    @property
    def healthy_ids(self) -> list[int]:
        return sorted(i for name, ids in IDS.items() if name != self.victim for i in ids)


@pytest.fixture(
    scope="module",
    params=["data_2", pytest.param("data_1", marks=pytest.mark.slow)],
    ids=["sql-victim", "orm-victim"],
)
def lab(request: pytest.FixtureRequest, pg_dsn: str) -> Iterator[Lab]:
    victim: str = request.param
    port = closed_port()
    upstream = Upstream.from_dsn(pg_dsn)
    proxied = FaultProxy(upstream, port=port).dsn()
    env = {
        "DATABASE_URL": pg_dsn,
        f"{victim.upper()}_URL": proxied,
        "SOURCE_TIMEOUT_S": str(TIMEOUT_S),
        "POOL_MAX_SIZE": "4",
    }
    runner = ServiceRunner(env)
    url = runner.wait_started()
    yield Lab(victim, port, pg_dsn, url, runner)
    runner.stop()


@asynccontextmanager
async def proxy_for(lab: Lab) -> AsyncIterator[FaultProxy]:
    """The victim's proxy, on its fixed port, forwarding until told otherwise."""
    proxy = FaultProxy(Upstream.from_dsn(lab.pg_dsn), port=lab.proxy_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        yield proxy
        nursery.cancel_scope.cancel()


@dataclass
class Answer:
    status: int
    ids: list[int]
    names: list[str]
    timing: dict[str, str]
    elapsed_s: float


async def get_data(url: str) -> Answer:
    async with httpx.AsyncClient(base_url=url) as client:
        started = trio.current_time()
        response = await client.get("/data")
        elapsed = trio.current_time() - started
    rows = response.json() if response.status_code == 200 else []
    timing = dict(
        re.findall(r'([\w.-]+);dur=[\d.]+;desc="(\w+)"', response.headers.get("server-timing", ""))
    )
    return Answer(
        response.status_code,
        [row["id"] for row in rows],
        [row["name"] for row in rows],
        timing,
        elapsed,
    )


async def assert_whole(lab: Lab) -> None:
    """Warm-up and recovery check: the answer is whole again."""
    answer = await get_data(lab.url)
    for _ in range(3):  # a connection killed by the last fault may cost one answer
        if answer.ids == list(range(1, 61)):
            break
        await trio.sleep(0.1)
        answer = await get_data(lab.url)
    assert answer.ids == list(range(1, 61)), answer.timing


def assert_victim_dropped(lab: Lab, answer: Answer, how: str) -> None:
    assert answer.status == 200
    assert answer.ids == lab.healthy_ids
    assert answer.elapsed_s < TIMEOUT_S + SLACK_S
    assert answer.timing[lab.victim] == how
    assert all(desc == "ok" for name, desc in answer.timing.items() if name != lab.victim)


CANCELLED_QUERY_GONE_S, LOST_CANCEL_QUERY_GONE_S = query_gone_bounds(TIMEOUT_S)


async def get_data_seen_on_the_server(lab: Lab, conn: Any) -> tuple[Answer, float]:
    """GET /data, and the time it was sent; fails unless the victim's query reached the server."""
    answers: list[Answer] = []

    async def request() -> None:
        answers.append(await get_data(lab.url))

    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        nursery.start_soon(request)
        seen = False
        while not seen and trio.current_time() < started + TIMEOUT_S:
            seen = bool(await service_queries_on(conn, lab.victim))
            await trio.sleep(0.01)
    assert seen, f"the query on {lab.victim} never reached the server"
    [answer] = answers
    return answer, started


# -- network faults, through the proxy ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "how", "drop_existing"),
    [
        ("delay", "timeout", False),
        ("blackhole_after_connect", "timeout", True),
        ("blackhole_mid_query", "timeout", False),
        ("reset_mid_query", "error", False),
        ("refuse", "error", True),
    ],
)
async def test_network_fault(lab: Lab, mode: str, how: str, drop_existing: bool) -> None:
    async with proxy_for(lab) as proxy:
        await assert_whole(lab)
        proxy.delay_s = TIMEOUT_S  # "delay": each read late enough to miss the deadline
        proxy.set_mode(mode)
        if drop_existing:
            proxy.drop_connections()  # the pool must open new connections, into the fault
        for _ in range(2):  # and a second time, on whatever the first left behind
            assert_victim_dropped(lab, await get_data(lab.url), how)
        proxy.set_mode("pass")
        await assert_whole(lab)


async def test_lost_cancel_request_still_meets_the_deadline(lab: Lab) -> None:
    """The query hangs on a lock and the cancel request never reaches the server."""
    async with proxy_for(lab) as proxy, admin(lab.pg_dsn) as conn:
        await assert_whole(lab)
        proxy.set_mode("drop_cancel")
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {lab.victim} IN ACCESS EXCLUSIVE MODE")
            answer, started = await get_data_seen_on_the_server(lab, conn)
            assert_victim_dropped(lab, answer, "timeout")
            # The lock is still held, yet the query the service gave up on dies on the
            # server: statement_timeout ends it.
            await assert_query_gone(
                conn, lab.victim, started=started, within_s=LOST_CANCEL_QUERY_GONE_S
            )
            assert proxy.cancels_dropped >= 1  # the service did ask, and its cancel was lost
        proxy.set_mode("pass")
        await assert_whole(lab)


# -- database-side faults --------------------------------------------------------------------


@asynccontextmanager
async def victim_replaced_by(conn: Any, victim: str, view_sql: str) -> AsyncIterator[None]:
    """Swap the victim table for a view (``{real}`` names the real table) and back."""
    real = f"{victim}_real"
    await conn.execute(f"ALTER TABLE {victim} RENAME TO {real}")
    try:
        await conn.execute(f"CREATE VIEW {victim} AS {view_sql.format(real=real)}")
        yield
    finally:
        await conn.execute(f"DROP VIEW IF EXISTS {victim}")
        await conn.execute(f"ALTER TABLE {real} RENAME TO {victim}")


async def test_missing_table(lab: Lab) -> None:
    async with proxy_for(lab), admin(lab.pg_dsn) as conn:
        await assert_whole(lab)
        await conn.execute(f"ALTER TABLE {lab.victim} RENAME TO {lab.victim}_away")
        try:
            assert_victim_dropped(lab, await get_data(lab.url), "error")
        finally:
            await conn.execute(f"ALTER TABLE {lab.victim}_away RENAME TO {lab.victim}")
        await assert_whole(lab)


async def test_query_blocked_by_a_lock(lab: Lab) -> None:
    async with proxy_for(lab), admin(lab.pg_dsn) as conn:
        await assert_whole(lab)
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {lab.victim} IN ACCESS EXCLUSIVE MODE")
            answer, started = await get_data_seen_on_the_server(lab, conn)
            assert_victim_dropped(lab, answer, "timeout")
            # Still locked: only the service's cancel can end the query this soon.
            await assert_query_gone(
                conn, lab.victim, started=started, within_s=CANCELLED_QUERY_GONE_S
            )
        await assert_whole(lab)


async def test_pg_sleep_past_the_deadline(lab: Lab) -> None:
    async with proxy_for(lab), admin(lab.pg_dsn) as conn:
        await assert_whole(lab)
        # Sleeps for 3 s, past statement_timeout too: only the cancel can end it in time.
        view = "SELECT id, name FROM {real} CROSS JOIN pg_sleep(%s)" % (TIMEOUT_S * 6)
        async with victim_replaced_by(conn, lab.victim, view):
            answer, started = await get_data_seen_on_the_server(lab, conn)
            assert_victim_dropped(lab, answer, "timeout")
            await assert_query_gone(
                conn, lab.victim, started=started, within_s=CANCELLED_QUERY_GONE_S
            )
        await assert_whole(lab)


async def test_null_id_drops_the_whole_source(lab: Lab) -> None:
    async with proxy_for(lab), admin(lab.pg_dsn) as conn:
        await assert_whole(lab)
        view = "SELECT id, name FROM {real} UNION ALL SELECT NULL::int, 'no id'::varchar(255)"
        async with victim_replaced_by(conn, lab.victim, view):
            assert_victim_dropped(lab, await get_data(lab.url), "invalid")
        await assert_whole(lab)


async def test_duplicate_ids_across_sources_are_all_kept_in_source_order(lab: Lab) -> None:
    other = "data_3"
    async with proxy_for(lab), admin(lab.pg_dsn) as conn:
        await assert_whole(lab)
        view = (
            "SELECT id, name FROM {real}"
            f" UNION ALL SELECT id, ('dup ' || id)::varchar(255) FROM {other}"
        )
        async with victim_replaced_by(conn, lab.victim, view):
            answer = await get_data(lab.url)
        assert answer.status == 200
        assert answer.ids == sorted([*range(1, 61), *IDS[other]])
        # Equal ids: the victim (data_1 or data_2) comes before data_3, as sources are ordered.
        first_dup = answer.ids.index(21)
        assert answer.names[first_dup : first_dup + 2] == ["dup 21", "Test 21"]
        await assert_whole(lab)


# -- a source whose server is down --------------------------------------------------------------


async def test_server_down_at_start_up_then_back(pg_dsn: str) -> None:
    """The service starts with a source's server down, serves the others, heals without restart."""
    port = closed_port()
    upstream = Upstream.from_dsn(pg_dsn)
    env = {
        "DATABASE_URL": pg_dsn,
        "DATA_3_URL": FaultProxy(upstream, port=port).dsn(),
        "SOURCE_TIMEOUT_S": str(TIMEOUT_S),
    }
    runner = ServiceRunner(env)
    try:
        url = await trio.to_thread.run_sync(runner.wait_started)
        answer = await get_data(url)
        assert answer.status == 200
        assert answer.ids == sorted(IDS["data_1"] + IDS["data_2"])
        assert answer.timing["data_3"] == "error"
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/ready")).status_code == 503
        proxy = FaultProxy(upstream, port=port)
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.serve)  # the server is back
            answer = await get_data(url)
            assert answer.ids == list(range(1, 61))
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/ready")).status_code == 200
            nursery.cancel_scope.cancel()
    finally:
        runner.stop()
