"""The Redis response cache of the search's pages (a real valkey from the wheel), Redis down,
and notices from Redis to the WebSocket of every worker's open pages."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import trio
import trio.testing
from quart_trio import QuartTrio
from trio_websocket import open_websocket_url

from service.platform.response_cache import REDIS_TIMEOUT_S, ResponseCache, open_redis
from service.search.fake_api import FakeApiState
from service.search.notices import CHANNEL, Notice, NoticeHub, RedisNotices, serve_notice_relay
from tests.support.pg_admin import admin
from tests.support.search_fixtures import (
    question_ids,
    running_fake_api,
    search_app,
    serving,
    write_ini,
)

pytestmark = pytest.mark.integration

TTL_S = 2


@dataclass
class Site:
    client: httpx.AsyncClient
    fake: FakeApiState
    dsn: str


@pytest.fixture
async def site(empty_db: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with running_fake_api() as (url, fake):
        ini = write_ini(tmp_path / "search.ini", url, cache={"ttl_s": TTL_S})
        # A key prefix of its own per test (write_ini): the session's valkey is shared.
        app = search_app(empty_db, ini, REDIS_URL=redis_url)
        async with serving(app) as client:
            yield Site(client, fake, empty_db)


async def new_query(client: httpx.AsyncClient, text: str) -> str:
    response = await client.post("/search", data={"q": text})
    assert response.status_code == 303
    return str(response.headers["Location"])


async def forget_results(dsn: str) -> None:
    """As if nothing were stored yet: the next uncached view must ask the API again."""
    async with admin(dsn) as conn:
        await conn.execute("DELETE FROM search_results")
        await conn.execute("UPDATE search_queries SET pages_fetched = 0, has_more = true")


async def test_a_second_view_within_the_ttl_is_a_hit_that_does_not_reach_the_api(
    site: Site,
) -> None:
    location = await new_query(site.client, f"cache {trio.current_time()}")
    first = await site.client.get(location)
    assert first.headers["X-Cache"] == "MISS"
    calls = site.fake.calls
    assert calls == 1
    await forget_results(site.dsn)
    second = await site.client.get(location)
    assert second.headers["X-Cache"] == "HIT"
    assert second.text == first.text
    assert site.fake.calls == calls
    other = await site.client.get(location + "?per_page=50")  # another query string: its own
    assert other.headers["X-Cache"] == "MISS"
    await forget_results(site.dsn)
    await trio.sleep(TTL_S + 0.5)
    third = await site.client.get(location)
    assert third.headers["X-Cache"] == "MISS"
    assert site.fake.calls == calls + 2  # the TTL passed: the page asked the API again
    assert question_ids(third.text) == question_ids(first.text)


async def test_a_new_query_is_listed_at_once_despite_the_cache(site: Site) -> None:
    listing = await site.client.get("/search/queries")
    assert listing.headers["X-Cache"] == "MISS"
    assert (await site.client.get("/search/queries")).headers["X-Cache"] == "HIT"
    await new_query(site.client, "freshly asked")
    listing = await site.client.get("/search/queries")
    assert "freshly asked" in listing.text


async def test_error_pages_are_not_cached(site: Site) -> None:
    location = await new_query(site.client, "bad values")
    for _ in range(2):
        response = await site.client.get(location + "?per_page=7")
        assert response.status_code == 400
        assert response.headers.get("X-Cache") != "HIT"


async def test_with_redis_down_pages_are_served_uncached_and_it_is_logged(
    empty_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there: Redis is down
    async with running_fake_api() as (url, _fake):
        app = search_app(
            empty_db, write_ini(tmp_path / "s.ini", url), REDIS_URL=f"redis://127.0.0.1:{port}"
        )
        async with serving(app) as client:
            with caplog.at_level(logging.WARNING, "service.platform.response_cache"):
                location = await new_query(client, "no redis")
                for _ in range(3):
                    response = await client.get(location)
                    assert response.status_code == 200
                    assert response.headers["X-Cache"] == "MISS"
                    assert len(question_ids(response.text)) == 25
    lines = [r for r in caplog.records if "serving uncached" in r.getMessage()]
    assert 1 <= len(lines) <= 2  # logged, and throttled


async def test_a_notice_reaches_the_open_pages_of_every_worker(
    empty_db: str, redis_url: str, tmp_path: Path
) -> None:
    async with running_fake_api() as (url, _fake):
        ini = write_ini(tmp_path / "s.ini", url)
        worker_a = search_app(empty_db, ini, REDIS_URL=redis_url)
        worker_b = search_app(empty_db, ini, REDIS_URL=redis_url)
        async with serving(worker_a) as a, serving(worker_b) as b, open_redis(redis_url) as redis:
            # Both workers subscribed (each relay is one subscriber of the channel).
            for _ in range(200):  # polled: the subscribers are in other tasks' hands
                if (await redis.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) >= 2:
                    break
                await trio.sleep(0.05)
            else:
                raise AssertionError("the workers did not subscribe within 10 s")
            ws_a = str(a.base_url).replace("http://", "ws://").rstrip("/") + "/search/ws"
            ws_b = str(b.base_url).replace("http://", "ws://").rstrip("/") + "/search/ws"
            async with open_websocket_url(ws_a) as page_a, open_websocket_url(ws_b) as page_b:
                await trio.sleep(0.2)  # the pages' subscriptions to their worker's hub
                # As the standalone command does: a publisher of its own.
                await RedisNotices(redis).publish(Notice(7, "trio nursery", "stackoverflow", 42))
                with trio.fail_after(10):
                    got_a = Notice.from_json(await page_a.get_message())
                    got_b = Notice.from_json(await page_b.get_message())
    assert got_a == got_b == Notice(7, "trio nursery", "stackoverflow", 42)
    assert got_a.message == (
        'Query "trio nursery" on stackoverflow was updated: 42 results stored.'
    )


def test_serve_without_redis_url_starts_an_embedded_redis_for_the_cache(
    empty_db_for_module: str, tmp_path: Path
) -> None:
    from service.platform.embedded_redis import running_embedded_redis
    from tests.support.service_runner import ServiceRunner

    data_dir = tmp_path / "data"
    env = {
        "DATABASE_URL": empty_db_for_module,
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": "cache-test-key-" + "x" * 32,
        "SEED_USERS": "0",
        "REDIS_URL": "",
    }
    runner = ServiceRunner(env)
    try:
        url = runner.wait_started()
        assert (running_embedded_redis(data_dir / "valkey") or "").startswith("redis://127.0.0.1:")
        first = httpx.get(f"{url}/search/queries", timeout=10)
        second = httpx.get(f"{url}/search/queries", timeout=10)
    finally:
        code, _took = runner.stop()
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert code == 0
    assert running_embedded_redis(data_dir / "valkey") is None  # stopped with the service


async def test_a_refresh_notice_drops_that_querys_cached_pages_only(
    site: Site, redis_url: str
) -> None:
    one = await new_query(site.client, "first refreshed")
    two = await new_query(site.client, "second untouched")
    for path in (one, two, one + "?per_page=50"):
        await site.client.get(path)
        assert (await site.client.get(path)).headers["X-Cache"] == "HIT"
    query_id = int(one.rsplit("/", 1)[1])
    async with open_redis(redis_url) as redis:
        await RedisNotices(redis).publish(Notice(query_id, "first refreshed", "so", 25))
    for _ in range(100):  # the worker's relay drops the pages when the notice arrives
        if (await site.client.get(one)).headers["X-Cache"] == "MISS":
            break
        await trio.sleep(0.05)
    else:
        raise AssertionError("the refreshed query's page stayed cached")
    assert (await site.client.get(one + "?per_page=50")).headers["X-Cache"] == "MISS"
    assert (await site.client.get(two)).headers["X-Cache"] == "HIT"  # another query's page


async def test_a_hung_redis_costs_a_page_at_most_redis_timeout_s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Redis that accepts connections and never answers: the lookup is given up after
    REDIS_TIMEOUT_S (no retry doubling it), and the next ones skip Redis for a while."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _hang, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        async with open_redis(f"redis://127.0.0.1:{port}") as redis:
            cache = ResponseCache(redis, ttl_s=60, namespace="hung", clock=trio.current_time)
            started = trio.current_time()
            assert await cache.lookup("/search") is None
            assert trio.current_time() - started <= REDIS_TIMEOUT_S + 0.01
            started = trio.current_time()
            assert await cache.lookup("/search") is None  # Redis is skipped meanwhile
            assert trio.current_time() - started < 0.01
        nursery.cancel_scope.cancel()


async def _hang(stream: trio.SocketStream) -> None:
    async with stream:
        await trio.sleep_forever()


async def test_with_redis_down_the_notice_relay_logs_throttled_and_keeps_trying(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    class DownRedis:
        """Every subscription fails at once, as with Redis gone (coredis gives up)."""

        tries = 0

        def pubsub(self, **_options: object) -> Any:
            self.tries += 1
            raise ConnectionError("Unable to establish a connection to 127.0.0.1:1")

    redis = DownRedis()
    with caplog.at_level(logging.WARNING, "service.search.notices"):
        with trio.move_on_after(120):  # 120 tries, one a second
            await serve_notice_relay(cast(Any, redis), NoticeHub())
    assert redis.tries >= 100  # it keeps trying
    lines = [r for r in caplog.records if "subscription lost" in r.getMessage()]
    assert 1 <= len(lines) <= 5  # one line per 30 s, not one per try
    assert "more failures since the last line" in lines[-1].getMessage()


async def test_a_cached_search_page_sets_no_cookie(site: Site) -> None:
    location = await new_query(site.client, "cookies")
    for path in ("/search", "/search/queries", location):
        for expected in ("MISS", "HIT"):
            site.client.cookies.clear()
            response = await site.client.get(path)
            assert response.status_code == 200
            assert response.headers["X-Cache"] == expected, path
            assert "set-cookie" not in response.headers, (path, expected)


async def test_equal_page_requests_share_one_entry_and_unknown_parameters_are_refused(
    site: Site,
) -> None:
    location = await new_query(site.client, "canonical keys")
    assert (await site.client.get(location)).headers["X-Cache"] == "MISS"
    for same in ("?page=1", "?order=desc&sort=score&per_page=25", "?per_page=%2025"):
        response = await site.client.get(location + same)
        assert response.headers["X-Cache"] == "HIT", same
    for extra in ("?utm_source=x", "?page=1&Page=2", "?page=1&page=1x"):
        response = await site.client.get(location + extra)
        assert response.status_code == 400, extra
        assert response.headers.get("X-Cache") != "HIT"
    refused = await site.client.get(location + "?utm_source=x")
    assert "unknown utm_source" in refused.text


async def test_the_forms_recent_list_follows_a_querys_count(site: Site) -> None:
    location = await new_query(site.client, "counted")
    form = await site.client.get("/search")
    assert "0 stored" in form.text
    assert (await site.client.get("/search")).headers["X-Cache"] == "HIT"
    await site.client.get(location)  # fetches an API page: 100 results stored
    form = await site.client.get("/search")
    assert form.headers["X-Cache"] == "MISS"
    assert "100 stored" in form.text


async def test_a_page_rendered_before_a_change_is_not_stored_as_current(redis_url: str) -> None:
    """The generations are read before the view: a change elsewhere (a refresh's bump)
    while the view renders the old rows leaves that page under the old number."""
    app = QuartTrio(__name__)
    renders = 0
    reading, changed = trio.Event(), trio.Event()
    async with open_redis(redis_url) as redis:
        cache = ResponseCache(redis, ttl_s=60, namespace=f"race-{trio.current_time()}")

        async def change_elsewhere() -> None:
            await reading.wait()
            await cache.bump("rows")
            changed.set()

        @app.get("/page")
        @cache.cached_by(lambda: ("/page", ("rows",)))
        async def page() -> str:
            nonlocal renders
            renders += 1
            if renders == 1:  # the rows change while this render reads them
                reading.set()
                await changed.wait()
            return f"render {renders}"

        client = app.test_client()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(change_elsewhere)
            first = await client.get("/page")
        second = await client.get("/page")
        third = await client.get("/page")
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "MISS"
    assert await second.get_data(as_text=True) == "render 2"
    assert third.headers["X-Cache"] == "HIT"
    assert await third.get_data(as_text=True) == "render 2"


async def test_a_page_past_one_views_api_budget_says_so_and_is_not_cached(
    empty_db: str, redis_url: str, tmp_path: Path
) -> None:
    async with running_fake_api() as (url, _fake):
        ini = write_ini(tmp_path / "search.ini", url, api={"page_size": 10})
        async with serving(search_app(empty_db, ini, REDIS_URL=redis_url)) as client:
            location = await new_query(client, "past the budget")
            for _ in range(2):  # 5 API pages of 10 per view: page 2 of 100 needs 20
                response = await client.get(location + "?per_page=100&page=2")
                assert response.status_code == 200
                assert 'id="incomplete"' in response.text
                assert response.headers["X-Cache"] == "MISS"
                assert "no-store" in response.headers["Cache-Control"]
