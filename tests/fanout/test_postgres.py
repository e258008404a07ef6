"""The fan-out against a real PostgreSQL: ORM source, triopg sources, and their faults."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import triopg

from service.fanout.backends import Backends, open_backends
from service.fanout.gather import FanoutResult, gather
from service.fanout.outcome import Outcome
from service.platform.aio import use_loop
from service.platform.pg_settings import APPLICATION_NAME
from service.platform.settings import Settings, SourceKind, SourceSettings
from tests.support import ROOT
from tests.support.json_server import JsonServer
from tests.support.pg_activity import assert_query_gone, query_gone_bounds, service_queries_on
from tests.support.tcp_proxy import FaultProxy, Upstream, closed_port, serve_silent_listener

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.5
#: The promise: the whole fan-out is over within the timeout plus this.
SLACK_S = 0.05
ALL_IDS = list(range(1, 61))


def settings_for(dsn: str, **dsn_overrides: str) -> Settings:
    """The three demo sources on ``dsn`` (or per-source DSNs), with a short timeout."""
    settings = Settings.from_env({"DATABASE_URL": dsn, "SOURCE_TIMEOUT_S": str(TIMEOUT_S)})
    sources = tuple(
        dataclasses.replace(s, dsn=dsn_overrides.get(s.name, s.dsn)) for s in settings.sources
    )
    return dataclasses.replace(settings, sources=sources)


@asynccontextmanager
async def admin(backends: Backends, dsn: str) -> AsyncIterator[Any]:
    """A second session, outside the service (e.g. to hold a lock)."""
    with use_loop(backends.loop):
        async with triopg.connect(dsn) as conn:
            yield conn


async def timed_gather(backends: Backends) -> tuple[FanoutResult, float]:
    started = trio.current_time()
    result = await gather(backends.sources, TIMEOUT_S)
    return result, trio.current_time() - started


@asynccontextmanager
async def proxied(pg_dsn: str) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the test database, forwarding until told otherwise."""
    proxy = FaultProxy(Upstream.from_dsn(pg_dsn))
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        yield proxy
        nursery.cancel_scope.cancel()


def outcomes(result: FanoutResult) -> dict[str, Outcome]:
    return {report.source: report.outcome for report in result.reports}


CANCELLED_QUERY_GONE_S, LOST_CANCEL_QUERY_GONE_S = query_gone_bounds(TIMEOUT_S)


async def gather_seen_on_the_server(
    backends: Backends, conn: Any, table: str, *, once_seen: Callable[[], object] = lambda: None
) -> tuple[FanoutResult, float, float]:
    """The fan-out's result, its duration and start; fails unless the query on ``table``
    reached the server (``once_seen`` is called then, while the fan-out still runs)."""
    finished: list[tuple[FanoutResult, float]] = []

    async def request() -> None:
        finished.append(await timed_gather(backends))

    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        nursery.start_soon(request)
        seen = False
        while not seen and trio.current_time() < started + TIMEOUT_S:
            seen = bool(await service_queries_on(conn, table))
            await trio.sleep(0.01)
        if seen:
            once_seen()
    assert seen, f"the query on {table} never reached the server"
    [(result, elapsed)] = finished
    return result, elapsed, started


async def test_full_answer_has_the_60_seeded_rows_sorted(pg_dsn: str) -> None:
    async with open_backends(settings_for(pg_dsn)) as backends:
        result, _ = await timed_gather(backends)
    assert [row["id"] for row in result.rows] == ALL_IDS
    assert all(row["name"] == f"Test {row['id']}" for row in result.rows)
    assert outcomes(result) == {"data_1": Outcome.OK, "data_2": Outcome.OK, "data_3": Outcome.OK}
    assert {r.source: r.rows for r in result.reports} == {"data_1": 20, "data_2": 20, "data_3": 20}


async def test_source_1_is_read_through_the_orm_and_2_3_through_triopg(pg_dsn: str) -> None:
    async with open_backends(settings_for(pg_dsn)) as backends:
        assert list(backends.engines) == ["data_1"]
        assert list(backends.pools) == ["data_2", "data_3"]


@pytest.mark.parametrize("locked", ["data_1", "data_2"])
async def test_source_blocked_by_a_lock_is_dropped_within_the_deadline(
    pg_dsn: str, locked: str
) -> None:
    async with open_backends(settings_for(pg_dsn)) as backends, admin(backends, pg_dsn) as conn:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")
            result, elapsed, started = await gather_seen_on_the_server(backends, conn, locked)
            assert elapsed < TIMEOUT_S + SLACK_S
            assert outcomes(result)[locked] is Outcome.TIMEOUT
            expected = {r["id"] for r in result.rows}
            assert len(expected) == 40
            # Still locked: only the service's cancel request ends the query this soon.
            await assert_query_gone(conn, locked, started=started, within_s=CANCELLED_QUERY_GONE_S)
        # The pools recovered: the next answer is whole again.
        result, _ = await timed_gather(backends)
        assert [row["id"] for row in result.rows] == ALL_IDS


async def test_missing_table_is_an_error_and_the_others_answer(pg_dsn: str) -> None:
    settings = settings_for(pg_dsn)
    sources = (
        *settings.sources,
        SourceSettings("ghost_sql", SourceKind.SQL, pg_dsn, "no_such_table"),
        SourceSettings("ghost_orm", SourceKind.ORM, pg_dsn, "no_such_table_either"),
    )
    async with open_backends(dataclasses.replace(settings, sources=sources)) as backends:
        for _ in range(2):  # and the pools stay usable after the error
            result, elapsed = await timed_gather(backends)
            assert [row["id"] for row in result.rows] == ALL_IDS
            assert outcomes(result)["ghost_sql"] is Outcome.ERROR
            assert outcomes(result)["ghost_orm"] is Outcome.ERROR
            assert elapsed < TIMEOUT_S


async def test_unreachable_server_is_an_error_and_the_others_answer(pg_dsn: str) -> None:
    refused = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    async with open_backends(settings_for(pg_dsn, data_1=refused, data_3=refused)) as backends:
        result, elapsed = await timed_gather(backends)
    assert outcomes(result) == {
        "data_1": Outcome.ERROR,
        "data_2": Outcome.OK,
        "data_3": Outcome.ERROR,
    }
    assert [row["id"] for row in result.rows] == [*range(11, 21), *range(41, 51)]
    assert elapsed < TIMEOUT_S


async def test_server_that_never_answers_the_handshake_times_out(pg_dsn: str) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_silent_listener)
        silent = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        async with open_backends(settings_for(pg_dsn, data_1=silent, data_2=silent)) as backends:
            result, elapsed = await timed_gather(backends)
        nursery.cancel_scope.cancel()
    assert outcomes(result) == {
        "data_1": Outcome.TIMEOUT,
        "data_2": Outcome.TIMEOUT,
        "data_3": Outcome.OK,
    }
    assert [row["id"] for row in result.rows] == [*range(21, 31), *range(51, 61)]
    assert elapsed < TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("silenced", ["data_1", "data_2"])
async def test_network_going_silent_mid_query_still_meets_the_deadline(
    pg_dsn: str, silenced: str
) -> None:
    async with proxied(pg_dsn) as proxy:
        settings = settings_for(pg_dsn, **{silenced: proxy.dsn()})
        async with open_backends(settings) as backends:
            warm, _ = await timed_gather(backends)  # connections open through the proxy
            assert [row["id"] for row in warm.rows] == ALL_IDS
            proxy.blackhole()
            for _ in range(2):  # the pool must not hand back the dead connection and hang
                result, elapsed = await timed_gather(backends)
                assert elapsed < TIMEOUT_S + SLACK_S
                assert outcomes(result)[silenced] is Outcome.TIMEOUT
                assert len(result.rows) == 40
            proxy.heal()
            healed, _ = await timed_gather(backends)
            assert [row["id"] for row in healed.rows] == ALL_IDS


async def test_server_side_statement_timeout_and_application_name_are_set(pg_dsn: str) -> None:
    async with open_backends(settings_for(pg_dsn)) as backends:
        pool = backends.pools["data_2"]
        assert await pool.fetchval("SHOW statement_timeout") == "1500ms"
        assert await pool.fetchval("SHOW application_name") == APPLICATION_NAME


@pytest.mark.parametrize("silenced", ["data_1", "data_3"])
async def test_network_going_silent_while_the_query_waits_on_the_server(
    pg_dsn: str, silenced: str
) -> None:
    """The query reaches the server, then the network goes silent: no answer, no cancel."""
    async with proxied(pg_dsn) as proxy:
        settings = settings_for(pg_dsn, **{silenced: proxy.dsn()})
        async with open_backends(settings) as backends, admin(backends, pg_dsn) as conn:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {silenced} IN ACCESS EXCLUSIVE MODE")
                result, elapsed, started = await gather_seen_on_the_server(
                    backends, conn, silenced, once_seen=proxy.blackhole
                )
                assert elapsed < TIMEOUT_S + SLACK_S
                assert outcomes(result)[silenced] is Outcome.TIMEOUT
                assert len(result.rows) == 40
                # The lock still holds the query and nothing the service sends or closes
                # gets through, yet the query dies on the server: statement_timeout ends it.
                await assert_query_gone(
                    conn, silenced, started=started, within_s=LOST_CANCEL_QUERY_GONE_S
                )
            proxy.heal()
            healed, _ = await timed_gather(backends)
            assert [row["id"] for row in healed.rows] == ALL_IDS


DEMO_SOURCES = ROOT / "service" / "fanout" / "demo_sources"


async def test_shipped_demo_json_files_hold_the_seeded_rows(pg_dsn: str) -> None:
    async with open_backends(settings_for(pg_dsn)) as backends:
        for source in backends.sources:
            from_db = sorted(await source.fetch(), key=lambda row: row["id"])
            from_file = orjson.loads((DEMO_SOURCES / f"{source.name}.json").read_bytes())
            assert [dict(row) for row in from_db] == from_file


async def test_mixed_configuration_orm_sql_and_http_end_to_end(pg_dsn: str, tmp_path: Path) -> None:
    rows_3 = orjson.loads((DEMO_SOURCES / "data_3.json").read_bytes())
    server = JsonServer(rows_3)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        config = tmp_path / "mixed.toml"
        config.write_text(
            f"""
            [[source]]
            name = "data_1"
            kind = "orm"
            table = "data_1"

            [[source]]
            name = "data_2"
            kind = "sql"
            table = "data_2"
            timeout_s = {TIMEOUT_S}

            [[source]]
            name = "http_3"
            kind = "http"
            url = "{server.url("/healthy")}"
            """
        )
        settings = Settings.from_env(
            {"SOURCES_FILE": str(config), "DATABASE_URL": pg_dsn, "SOURCE_TIMEOUT_S": "1.0"}
        )
        async with open_backends(settings) as backends:
            assert [type(s).__name__ for s in backends.sources] == [
                "OrmTableSource",
                "SqlTableSource",
                "HttpJsonSource",
            ]
            result = await gather(
                backends.sources, settings.source_timeout_s, timeouts=settings.source_timeouts()
            )
        nursery.cancel_scope.cancel()
    assert [row["id"] for row in result.rows] == ALL_IDS
    assert outcomes(result) == {"data_1": Outcome.OK, "data_2": Outcome.OK, "http_3": Outcome.OK}


async def test_connections_killed_while_idle_cost_no_request(pg_dsn: str) -> None:
    """A restart or failover closes idle connections: the next answer is still whole."""
    async with open_backends(settings_for(pg_dsn)) as backends, admin(backends, pg_dsn) as conn:
        for _ in range(3):
            async with trio.open_nursery() as nursery:  # several connections per source
                for _ in range(3):
                    nursery.start_soon(timed_gather, backends)
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            APPLICATION_NAME,
        )
        assert killed >= 3
        await trio.sleep(0.2)  # the closes reach the service's sockets
        for _ in range(3):
            result, _ = await timed_gather(backends)
            assert outcomes(result) == {
                "data_1": Outcome.OK,
                "data_2": Outcome.OK,
                "data_3": Outcome.OK,
            }


async def test_orm_source_runs_the_select_of_its_mapped_class(pg_dsn: str) -> None:
    from sqlalchemy import event

    statements: list[str] = []
    async with open_backends(settings_for(pg_dsn)) as backends:
        engine = backends.engines["data_1"]
        event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_rest: statements.append(statement),
        )
        rows = await backends.sources[0].fetch()
    assert statements == ["SELECT data_1.id, data_1.name \nFROM data_1"]
    assert len(rows) == 20


async def test_shutdown_does_not_wait_on_a_silent_network(pg_dsn: str) -> None:
    async with proxied(pg_dsn) as proxy:
        settings = settings_for(pg_dsn, data_1=proxy.dsn(), data_2=proxy.dsn())
        async with open_backends(settings) as backends:
            warm, _ = await timed_gather(backends)
            assert len(warm.rows) == 60
            proxy.blackhole()
            started = trio.current_time()
        closing_s = trio.current_time() - started
    assert closing_s < 0.2
