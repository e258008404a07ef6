"""The HTTP surface, on fake sources, through quart-trio's test client."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing
import trio_asyncio
from quart_trio import QuartTrio
from sqlalchemy.ext.asyncio import AsyncEngine

from service.accounts.passwords import Passwords
from service.app import create_app
from service.fanout.source import FakeSource
from service.platform.database import Database
from service.platform.pg_pool import PgPool
from service.platform.settings import Settings
from service.platform.source_config import SourceKind
from tests.support.fake_sources_app import app_with
from tests.support.search_fixtures import write_ini


def rows(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Test {i}"} for i in ids]


@pytest.fixture
def healthy_app() -> QuartTrio:
    return app_with(
        FakeSource("data_1", rows(1, 31)),
        FakeSource("data_2", rows(11)),
        FakeSource("data_3", rows(21)),
    )


async def test_data_answers_sorted_json_with_server_timing(healthy_app: QuartTrio) -> None:
    async with healthy_app.test_app() as test_app:
        response = await test_app.test_client().get("/data")
        assert response.status_code == 200
        assert response.content_type == "application/json"
        assert orjson.loads(await response.get_data()) == rows(1, 11, 21, 31)
        timing = response.headers["Server-Timing"]
        assert [entry.split(";")[0] for entry in timing.split(", ")] == [
            "data_1",
            "data_2",
            "data_3",
        ]
        assert timing.count('desc="ok"') == 3


async def test_failed_and_late_sources_are_reported_in_server_timing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = app_with(
        FakeSource("data_1", rows(1)),
        FakeSource("data_2", rows(2), delay_s=10.0),
        FakeSource("data_3", error=RuntimeError("boom")),
    )
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/data")
        assert response.status_code == 200
        assert orjson.loads(await response.get_data()) == rows(1)
        timing = response.headers["Server-Timing"]
        assert "data_1;dur=" in timing
        assert 'data_2;dur=2000.0;desc="timeout"' in timing
        assert 'data_3;dur=0.0;desc="error"' in timing


async def test_all_sources_failing_is_200_with_empty_list() -> None:
    app = app_with(
        FakeSource("a", error=OSError("x")), FakeSource("b", [{"id": None, "name": "x"}])
    )
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/data")
        assert response.status_code == 200
        assert await response.get_data() == b"[]"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_on_data_are_405_json(healthy_app: QuartTrio, method: str) -> None:
    async with healthy_app.test_app() as test_app:
        response = await test_app.test_client().open("/data", method=method, json=None)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, HEAD"
        assert orjson.loads(await response.get_data())["error"] == "method_not_allowed"


async def test_head_on_data_is_allowed(healthy_app: QuartTrio) -> None:
    # The body is dropped by the server (see the real-process test), not by the app.
    async with healthy_app.test_app() as test_app:
        response = await test_app.test_client().head("/data")
        assert response.status_code == 200
        assert "Server-Timing" in response.headers


async def test_unknown_path_is_json_404(healthy_app: QuartTrio) -> None:
    async with healthy_app.test_app() as test_app:
        response = await test_app.test_client().get("/nope")
        assert response.status_code == 404
        assert response.content_type == "application/json"
        assert orjson.loads(await response.get_data())["error"] == "not_found"


async def test_query_parameters_on_data_are_a_clear_400(healthy_app: QuartTrio) -> None:
    async with healthy_app.test_app() as test_app:
        response = await test_app.test_client().get("/data", query_string={"limit": "5"})
        assert response.status_code == 400
        body = orjson.loads(await response.get_data())
        assert body["error"] == "bad_request"
        assert "limit" in body["message"]


async def test_health_is_ok_even_when_sources_fail() -> None:
    app = app_with(FakeSource("a", error=OSError("down")))
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/health")
        assert response.status_code == 200
        assert orjson.loads(await response.get_data())["status"] == "ok"


async def test_ready_reports_each_source(healthy_app: QuartTrio) -> None:
    async with healthy_app.test_app() as test_app:
        response = await test_app.test_client().get("/ready")
        assert response.status_code == 200
        body = orjson.loads(await response.get_data())
        assert body["status"] == "ready"
        assert {name: s["status"] for name, s in body["sources"].items()} == {
            "data_1": "ok",
            "data_2": "ok",
            "data_3": "ok",
        }


class SlowCheckSource(FakeSource):
    """A FakeSource whose readiness check takes ``check_s``, then ends as FakeSource's does."""

    def __init__(self, *args: Any, check_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_s = check_s

    async def check(self) -> None:
        await trio.sleep(self.check_s)
        await super().check()


async def test_ready_is_503_when_a_source_is_down(autojump_clock: trio.testing.MockClock) -> None:
    app = app_with(
        FakeSource("data_1", rows(1)),
        SlowCheckSource("data_2", error=OSError("refused"), check_s=0.3),
    )
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/ready")
        assert response.status_code == 503
        body = orjson.loads(await response.get_data())
        assert body["status"] == "degraded"
        assert body["sources"]["data_2"] == {
            "status": "error",
            "elapsed_ms": 300.0,  # how long its check took, in ms (virtual clock: exact)
            "error": "OSError",
        }


async def test_an_unexpected_error_is_a_json_500_without_traceback() -> None:
    class ExplodingSource(FakeSource):
        @property
        def name(self) -> str:
            raise RuntimeError("secret internals")

    app = app_with(ExplodingSource("x"))
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/data")
        assert response.status_code == 500
        body = await response.get_data()
        assert orjson.loads(body) == {"error": "internal_error", "message": "internal server error"}
        assert b"secret" not in body
        assert b"Traceback" not in body


async def test_each_app_object_is_independent() -> None:
    first, second = app_with(FakeSource("a", rows(1))), app_with(FakeSource("a", rows(2)))
    for app, expected in ((first, rows(1)), (second, rows(2))):
        async with app.test_app() as test_app:
            response = await test_app.test_client().get("/data")
            assert orjson.loads(await response.get_data()) == expected


def _live(kind: type) -> list[Any]:
    """The objects of ``kind`` alive now (start-up objects are frozen out of the GC's view
    while the app serves: thawed first)."""
    gc.unfreeze()
    return [o for o in gc.get_objects() if isinstance(o, kind)]


@pytest.mark.integration
async def test_a_worker_has_one_asyncio_loop_and_one_application_database(
    empty_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Every capability on (the fan-out's sources, accounts, the auth API, the tasks, the
    search with its refresher): one trio-asyncio loop, and one engine and pool of the
    application database, besides the fan-out's own per source (before: five loops, and
    four engines and pools of the application database)."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": empty_db,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-key-" + "x" * 32,
            "SEARCH_CONFIG": str(write_ini(tmp_path / "search.ini", "http://127.0.0.1:9")),
            "IMAGES_DIR": str(tmp_path / "images"),
        }
    )
    # Objects left by earlier tests of the session (not yet collected) are not this app's.
    gc.collect()
    # (kept referenced, so that no new object can take an earlier one's id)
    left = [
        o
        for kind in (trio_asyncio.TrioEventLoop, AsyncEngine, PgPool, Database)
        for o in _live(kind)
    ]
    earlier = {id(o) for o in left}
    orm_sources = sum(source.kind is SourceKind.ORM for source in settings.sources)
    sql_sources = sum(source.kind is SourceKind.SQL for source in settings.sources)
    app = create_app(settings, passwords=Passwords.cheap())
    async with app.test_app() as test_app:
        assert (await test_app.test_client().get("/data")).status_code == 200
        loops = [
            loop
            for loop in _live(trio_asyncio.TrioEventLoop)
            if not loop.is_closed() and id(loop) not in earlier
        ]
        engines = [o for o in _live(AsyncEngine) if id(o) not in earlier]
        pools = [o for o in _live(PgPool) if id(o) not in earlier]
        databases = [o for o in _live(Database) if id(o) not in earlier]
    assert len(loops) == 1
    assert len(engines) == orm_sources + 1
    assert len(pools) == sql_sources + 1
    assert len(databases) == 1
