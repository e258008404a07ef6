"""The refresher on trio's virtual clock with in-memory fakes (one round per interval, one
refresher at a time, failures, notices), and its PostgreSQL parts: the advisory lock, the
results replaced and the questions updated in place, the standalone command."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from service.platform.database import open_database
from service.search.client import (
    ApiBackoffError,
    ApiErrorResponse,
    ApiThrottledError,
    SearchApiError,
)
from service.search.fakes import MemoryLock, MemorySource, MemoryStore
from service.search.fetching import fetch_until
from service.search.models import ApiPage
from service.search.notices import MemoryNotices, NoticeHub
from service.search.refresher import Refresher
from service.search.store import PgRefreshLock, SearchStore
from tests.support import ROOT

INTERVAL_S = 600.0


def refresher_of(
    store: MemoryStore,
    source: MemorySource,
    lock: MemoryLock | None = None,
    notices: MemoryNotices | None = None,
) -> Refresher:
    return Refresher(
        source=source,
        store=store,
        lock=lock or MemoryLock(),
        notices=notices or MemoryNotices(),
        interval_s=INTERVAL_S,
        api_page_size=100,
    )


async def test_every_query_is_refreshed_once_per_interval_with_a_notice_naming_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source, notices = MemoryStore(), MemorySource(), MemoryNotices()
    first, second = store.add_query("trio nursery"), store.add_query("asyncpg pool", "dba")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(refresher_of(store, source, notices=notices).serve)
        await trio.sleep(INTERVAL_S - 1)
        assert source.calls == []
        assert notices.published == []
        await trio.sleep(2)  # the first round
        assert [(n.query_id, n.text, n.site) for n in notices.published] == [
            (first.id, "trio nursery", "stackoverflow"),
            (second.id, "asyncpg pool", "dba"),
        ]
        assert 'Query "trio nursery" on stackoverflow was updated' in notices.published[0].message
        await trio.sleep(INTERVAL_S)  # the second round
        assert len(notices.published) == 4
        nursery.cancel_scope.cancel()
    assert notices.published[0].result_count == store.queries[first.id].result_count > 0


async def test_two_workers_refresh_each_query_once_per_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source, notices, lock = MemoryStore(), MemorySource(), MemoryNotices(), MemoryLock()
    store.add_query("trio nursery")
    source.delay_s = 5.0  # a round takes a while: the other worker's comes meanwhile
    async with trio.open_nursery() as nursery:
        nursery.start_soon(refresher_of(store, source, lock, notices).serve)
        await trio.sleep(10.0)  # the second worker started after the first round
        nursery.start_soon(refresher_of(store, source, lock, notices).serve)
        await trio.sleep(3 * INTERVAL_S + 30)
        nursery.cancel_scope.cancel()
    assert len(notices.published) == 3


async def test_a_round_is_skipped_while_another_refresher_holds_the_lock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source, notices, lock = MemoryStore(), MemorySource(), MemoryNotices(), MemoryLock()
    store.add_query("trio nursery")
    lock.held = True  # the standalone command, say
    report = await refresher_of(store, source, lock, notices).run_once(every_query=True)
    assert report.locked_out
    assert source.calls == []
    assert notices.published == []
    lock.held = False
    report = await refresher_of(store, source, lock, notices).run_once(every_query=True)
    assert report.refreshed == (1,)
    assert len(notices.published) == 1


async def test_a_failing_query_does_not_stop_the_others_and_gets_no_notice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source, notices = MemoryStore(), MemorySource(), MemoryNotices()
    bad, good = store.add_query("refused"), store.add_query("fine")
    source.failing.add("refused")
    report = await refresher_of(store, source, notices=notices).run_once(every_query=True)
    assert report.failed == (bad.id,)
    assert report.refreshed == (good.id,)
    assert [n.query_id for n in notices.published] == [good.id]


async def test_a_refresh_fetches_as_many_pages_as_were_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source = MemoryStore(), MemorySource()
    query = store.add_query("redis cache")  # 210 results: three API pages
    query = await fetch_until(query, 2, source=source, store=store, api_page_size=100)
    assert query.pages_fetched == 2
    assert query.result_count == 200
    assert query.has_more
    source.calls.clear()
    source.generation = 1
    await refresher_of(store, source).run_once(every_query=True)
    assert [page for _text, _site, page in source.calls] == [1, 2]
    assert store.queries[query.id].result_count == 200
    assert store.queries[query.id].refreshed_at is not None


@pytest.mark.integration
async def test_the_advisory_lock_is_held_by_one_session_at_a_time(empty_db: str) -> None:
    async with (
        open_database(empty_db, user="search-a") as one,
        open_database(empty_db, user="search-b") as two,
    ):
        async with PgRefreshLock(one).hold() as first:
            assert first is True
            async with PgRefreshLock(two).hold() as second:
                assert second is False
        async with PgRefreshLock(two).hold() as again:
            assert again is True  # released


@pytest.mark.integration
async def test_a_refresh_replaces_the_results_and_updates_questions_in_place(
    empty_db: str,
) -> None:
    source = MemorySource()
    async with open_database(empty_db, user="search") as database:
        store = SearchStore(database)
        query, created = await store.find_or_create_query("stackoverflow", "trio nursery")
        assert created
        query = await fetch_until(query, 1, source=source, store=store, api_page_size=100)
        before = await store.results(query.id, sort="score", order="desc", offset=0, limit=100)
        source.generation = 3  # the site changed: scores moved
        refresher = Refresher(
            source=source,
            store=store,
            lock=PgRefreshLock(database),
            notices=MemoryNotices(),
            interval_s=INTERVAL_S,
            api_page_size=100,
        )
        assert (await refresher.run_once()).refreshed == ()  # not due yet
        report = await refresher.run_once(every_query=True)
        assert report.refreshed == (query.id,)
        after = await store.results(query.id, sort="score", order="desc", offset=0, limit=100)
        stored = await store.get_query(query.id)
    assert stored is not None
    assert stored.refreshed_at is not None
    assert {q.question_id for q in after} == {q.question_id for q in before}
    old = {q.question_id: q.score for q in before}
    assert any(q.score != old[q.question_id] for q in after)
    assert stored.result_count == 100


def test_the_standalone_command_refuses_a_bad_config_naming_the_key(tmp_path: Path) -> None:
    ini = tmp_path / "bad.ini"
    ini.write_text("[pages]\ndefault_page_size = 30\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "service", "search-refresh", "--once"],
        env={
            "PATH": "/usr/bin:/bin",
            "SEARCH_CONFIG": str(ini),
            "DATABASE_URL": "postgresql://x/y",
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert "pages.default_page_size" in done.stderr


class ShiftingSource(MemorySource):
    """Its page 2 starts with the last question of page 1 (the order shifted between calls);
    each call takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.pause_s = delay_s

    async def search(self, text: str, site: str, page: int, page_size: int) -> ApiPage:
        await trio.sleep(self.pause_s)
        first = await super().search(text, site, page, page_size)
        if page == 1:
            return first
        previous = await super().search(text, site, page - 1, page_size)
        return replace(first, questions=(previous.questions[-1], *first.questions))


@pytest.mark.integration
async def test_two_views_fetching_at_once_store_each_page_and_question_once(
    empty_db: str,
) -> None:
    async with open_database(empty_db, user="search") as database:
        store = SearchStore(database)
        query, _ = await store.find_or_create_query("stackoverflow", "redis cache")
        # Both views read the query before either stored anything; the slow one (it needs
        # one page) gets its page 1 after the fast one (two pages) stored pages 1 and 2.
        async with trio.open_nursery() as nursery:
            for delay_s, pages in ((0.01, 2), (1.0, 1)):
                nursery.start_soon(
                    functools.partial(
                        fetch_until,
                        query,
                        pages,
                        source=ShiftingSource(delay_s),
                        store=store,
                        api_page_size=100,
                    )
                )
        stored = await store.get_query(query.id)
        rows = await store.results(query.id, sort="score", order="asc", offset=0, limit=1000)
    assert stored is not None
    assert stored.pages_fetched == 2
    ids = [q.question_id for q in rows]
    assert len(ids) == len(set(ids)) == stored.result_count == 200  # the repeat linked once


@pytest.mark.parametrize(
    "error",
    [
        ApiThrottledError("too many requests (HTTP 429)", 30),
        ApiBackoffError("search", 120),
    ],
)
async def test_throttling_or_a_backoff_ends_the_round_and_defers_the_rest(
    autojump_clock: trio.testing.MockClock, error: SearchApiError
) -> None:
    store, source, notices = MemoryStore(), MemorySource(), MemoryNotices()
    first, throttled, *rest = (store.add_query(text) for text in ("a", "b", "c", "d"))
    source.errors["b"] = error
    report = await refresher_of(store, source, notices=notices).run_once(every_query=True)
    assert report.refreshed == (first.id,)
    assert report.deferred == (throttled.id, *(q.id for q in rest))
    assert [text for text, _site, _page in source.calls] == ["a", "b"]  # c, d: not called


async def test_a_refresh_asks_for_at_most_max_pages_per_query(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source = MemoryStore(), MemorySource()
    query = store.add_query("redis cache")  # 210 results: three API pages
    query = await fetch_until(query, 3, source=source, store=store, api_page_size=100)
    assert query.pages_fetched == 3
    source.calls.clear()
    refresher = Refresher(
        source=source,
        store=store,
        lock=MemoryLock(),
        notices=MemoryNotices(),
        interval_s=INTERVAL_S,
        api_page_size=100,
        max_pages_per_query=1,
    )
    await refresher.run_once(every_query=True)
    assert [page for _text, _site, page in source.calls] == [1]
    assert store.queries[query.id].pages_fetched == 1
    assert store.queries[query.id].has_more  # the rest: fetched again when a view needs it


async def test_a_query_the_api_refuses_is_marked_and_not_refreshed_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source = MemoryStore(), MemorySource()
    refused, good = store.add_query("bad"), store.add_query("good")
    source.errors["bad"] = ApiErrorResponse(400, 400, "bad_parameter", "No site found for name `x`")
    refresher = refresher_of(store, source)
    first = await refresher.run_once(every_query=True)
    assert first.failed == (refused.id,)
    assert store.queries[refused.id].refused is not None
    assert "No site found" in (store.queries[refused.id].refused or "")
    source.calls.clear()
    second = await refresher.run_once(every_query=True)
    assert second.refreshed == (good.id,)
    assert [text for text, _site, _page in source.calls] == ["good"]


async def test_serve_runs_a_round_at_once_not_after_a_whole_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store, source = MemoryStore(), MemorySource()
    query = store.add_query("due")
    await trio.sleep(INTERVAL_S)  # due by the time the refresher starts
    async with trio.open_nursery() as nursery:
        nursery.start_soon(refresher_of(store, source).serve)
        await trio.sleep(1.0)
        assert store.queries[query.id].refreshed_at is not None
        nursery.cancel_scope.cancel()


async def test_closing_the_hub_ends_every_pages_channel_and_later_subscriptions() -> None:
    hub = NoticeHub()
    with hub.subscribe() as open_page:
        hub.close()  # serving stops
        with trio.fail_after(1):
            assert [notice async for notice in open_page] == []
        with hub.subscribe() as late_page:
            with trio.fail_after(1):
                assert [notice async for notice in late_page] == []
    assert hub.pages == 0
    hub.open()  # serving again (tests start and stop one app several times)
    with hub.subscribe():
        assert hub.pages == 1


@pytest.mark.integration
async def test_search_questions_carry_no_sort_indexes_and_the_schema_reapplies(
    empty_db: str,
) -> None:
    """The sorts are per query (through search_results' key): an index on a column of
    search_questions cannot serve them, so there is none; schema.sql runs again cleanly."""
    from service.platform.dbinit import default_sql_files
    from tests.support.pg_admin import admin

    schema, _seed = default_sql_files()
    async with admin(empty_db) as conn:
        await conn.execute(schema.read_text(encoding="utf-8"))  # idempotent
        rows = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'search_questions'"
        )
    assert [row["indexname"] for row in rows] == ["search_questions_pkey"]
