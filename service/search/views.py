"""The search's pages: the form (``/search``), the stored queries, a query's results (paged,
sorted, fetched from the API as needed), and the notices' WebSocket (``/search/ws``)."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from quart import Blueprint, abort, redirect, render_template, request, websocket
from quart.typing import ResponseReturnValue

from ..platform.database import Database
from ..platform.lifespan import WhileServing, background_tasks, hold_while_serving
from ..platform.rate_limits import Limit, MemoryRateLimiter, Rate, RateLimiter
from ..platform.response_cache import ResponseCache
from ..platform.settings import Settings
from ..platform.shared_redis import SharedRedis
from .backoff import Backoffs, LocalBackoffs, RedisBackoffs
from .client import SearchApiError, StackExchangeClient
from .config import SITE_NAME, SearchConfig, SearchConfigError, load_config
from .fetching import fetch_until
from .notices import Notice, NoticeHub, RedisNotices, serve_notice_relay
from .paging import PageRequest, PagingError, parse_page_request
from .refresher import MAX_BACKOFF_WAIT_S, Refresher
from .store import PgRefreshLock, SearchStore

__all__ = ["MAX_QUERY_LENGTH", "create_blueprint"]

logger = logging.getLogger("service.search.views")

MAX_QUERY_LENGTH = 200
_SITE = SITE_NAME
#: Stored queries the form lists (the newest).
RECENT_QUERIES = 10
#: Stored queries per page of /search/queries.
QUERIES_PER_PAGE = 100
_LIST_PAGE = re.compile(r"[0-9]{1,6}")
#: The results page's query parameters (any other is a 400).
PAGE_PARAMETERS = frozenset({"page", "per_page", "sort", "order"})
#: The cache generation of the pages listing queries (the form's recent list, the list).
LISTS = "lists"
#: Characters a search text may not hold (NUL, which PostgreSQL refuses, and the other
#: control characters: nothing a title search needs). Tab, CR and LF are white space, which
#: the text's words are joined again without.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Columns sorted high-to-low on their first click (numbers and dates); the rest A to Z.
_DESCENDING_FIRST = {
    "score",
    "answer_count",
    "view_count",
    "is_answered",
    "creation_date",
    "last_activity_date",
}
COLUMN_TITLES = {
    "title": "Title",
    "score": "Score",
    "answer_count": "Answers",
    "view_count": "Views",
    "is_answered": "Answered",
    "owner": "Author",
    "creation_date": "Created",
    "last_activity_date": "Last activity",
}


@dataclass
class _State:
    config: SearchConfig | None = None
    config_error: str | None = None
    store: SearchStore | None = None
    client: StackExchangeClient | None = None
    hub: NoticeHub = field(default_factory=NoticeHub)


def create_blueprint(
    settings: Settings,
    *,
    database: WhileServing[Database],
    redis: SharedRedis | None = None,
    limiter: RateLimiter | None = None,
) -> Blueprint:
    """The search's pages, open to everyone (they show only public data), on the worker's
    application ``database`` (the platform's). Without one or with an invalid ``search.ini``
    they answer 503 saying why; the rest of the service is unaffected. ``redis`` is the
    platform's client (open while serving; none: no cache,
    no notices between workers), ``limiter`` counts new queries (default: in memory)."""
    blueprint = Blueprint("search", __name__, template_folder="templates")
    state = _State()
    try:
        state.config = load_config(settings.search_config)
    except SearchConfigError as exc:
        state.config_error = f"The search's configuration is invalid: {exc}"
        logger.error("%s", state.config_error)
    ttl_s = state.config.cache_ttl_s if state.config else 60
    prefix = state.config.cache_key_prefix if state.config else "search"
    cache = ResponseCache(None, ttl_s=ttl_s, namespace=f"{prefix}:page")
    new_queries = Rate(state.config.new_queries_per_minute if state.config else 10, 60.0)
    counters: RateLimiter = limiter if limiter is not None else MemoryRateLimiter()

    async def forget_pages(notice: Notice) -> None:
        """A refreshed query's cached pages are stale, and the lists' counts: the next view
        reads the new results."""
        await cache.bump(_query_generation(notice.query_id), LISTS)

    @asynccontextmanager
    async def background_while_serving() -> AsyncIterator[None]:
        assert state.config is not None
        config = state.config
        opened = database()
        if opened is None:
            logger.warning("no DATABASE_URL: the search pages answer 503")
        state.hub.open()
        try:
            async with AsyncExitStack() as stack:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(headers={"Accept-Encoding": "gzip"})
                )
                shared = redis() if redis is not None else None
                cache.redis = shared
                # One record of the API's backoffs for this worker's clients, in Redis
                # for every worker and the standalone command.
                backoffs: Backoffs = RedisBackoffs(shared, LocalBackoffs(trio.current_time))
                state.client = _client(
                    http,
                    config,
                    max_backoff_wait_s=config.max_backoff_wait_s,
                    backoffs=backoffs,
                )
                nursery = await stack.enter_async_context(background_tasks())
                if shared is not None:
                    nursery.start_soon(
                        functools.partial(
                            serve_notice_relay, shared, state.hub, on_notice=forget_pages
                        )
                    )
                if opened is not None:
                    state.store = SearchStore(opened)
                    refresher = Refresher(
                        # The refresher may wait out a longer backoff: it has the time.
                        source=_client(
                            http,
                            config,
                            max_backoff_wait_s=MAX_BACKOFF_WAIT_S,
                            backoffs=backoffs,
                        ),
                        store=state.store,
                        lock=PgRefreshLock(opened),
                        notices=RedisNotices(shared),
                        interval_s=config.refresh_interval_s,
                        api_page_size=config.api_page_size,
                        max_pages_per_query=config.refresh_max_pages_per_query,
                    )
                    nursery.start_soon(refresher.serve)
                try:
                    yield
                finally:
                    stop_serving()  # before the background work ends: no new user
        finally:
            stop_serving()

    def stop_serving() -> None:
        state.store = state.client = None
        cache.redis = None
        state.hub.close()  # the open pages' sockets close with 1001

    # quart-trio waits at most 5 s for the app nursery's tasks when serving stops: the
    # background work gets 3 s to end, then it is cancelled.
    hold_while_serving(
        blueprint,
        lambda: background_while_serving() if state.config is not None else None,
        name="the search's background work",
        close_timeout_s=3.0,
    )

    def config() -> SearchConfig:
        if state.config is None:
            abort(503, state.config_error or "The search is not configured.")
        return state.config

    def store() -> SearchStore:
        config()
        if state.store is None:
            abort(503, "The search needs a database (DATABASE_URL).")
        return state.store

    def client() -> StackExchangeClient:
        if state.client is None:
            abort(503, "The search is starting or stopping; try again.")
        return state.client

    @blueprint.get("/search")
    @cache.cached_by(lambda: ("/search", (LISTS,)))  # query parameters: none, ignored
    async def search_form() -> ResponseReturnValue:
        return await _form(config(), "", site=config().default_site, error=None, status=200)

    async def _form(
        conf: SearchConfig, text: str, *, site: str, error: str | None, status: int
    ) -> ResponseReturnValue:
        recent = await store().recent_queries(RECENT_QUERIES)
        page = await render_template(
            "search/form.html",
            text=text,
            site=site,
            error=error,
            recent=recent,
            default_site=conf.default_site,
            max_length=MAX_QUERY_LENGTH,
        )
        return page, status

    @blueprint.post("/search")
    async def search() -> ResponseReturnValue:
        conf = config()
        form = await request.form
        raw_text = form.get("q") or ""
        # Control characters are refused before anything else (the form shows what was
        # typed without them): NUL would reach PostgreSQL and fail there.
        has_control = _CONTROL.search(raw_text) is not None
        text = " ".join(_CONTROL.sub(" ", raw_text).split())
        raw_site = form.get("site") or ""
        site = raw_site.strip().lower() or conf.default_site
        error = None
        if has_control:
            error = "The search text may not hold control characters (like NUL or ESC)."
        elif not text:
            error = "Type some words to look for in question titles."
        elif len(text) > MAX_QUERY_LENGTH:
            error = f"The search text may have at most {MAX_QUERY_LENGTH} characters."
        elif _SITE.fullmatch(site) is None:
            error = "The site is a Stack Exchange site name, like stackoverflow or superuser."
        if error is not None:
            shown_site = site if _SITE.fullmatch(site) else _CONTROL.sub("", site)[:64]
            return await _form(conf, text, site=shown_site, error=error, status=400)
        # New queries cost API quota: a client may create new_queries_per_minute of them
        # (across workers); asking again for a stored query is free. Counted before the
        # query is made (parallel posts cannot all pass), taken back if it was stored.
        counter = f"{conf.cache_key_prefix}:new-queries:{request.remote_addr or '?'}"
        verdict = await counters.hit([Limit(counter, new_queries)])
        if not verdict.allowed:
            existing = await store().find_query(site, text)
            if existing is None:
                error = (
                    f"Too many new searches from your address; try again in"
                    f" {verdict.retry_after_header} s (the stored ones stay open to you)."
                )
                return await _form(conf, text, site=site, error=error, status=429)
        query, created = await store().find_or_create_query(site, text)
        if created:
            await cache.bump(LISTS)
        elif verdict.attempt is not None:
            await counters.take_back(verdict.attempt, counter)
        return redirect(f"/search/queries/{query.id}", 303)

    def queries_key() -> tuple[str, tuple[str, ...]] | None:
        number = _list_page(request.args)
        return None if number is None else (f"/search/queries?page={number}", (LISTS,))

    @blueprint.get("/search/queries")
    @cache.cached_by(queries_key)
    async def queries() -> ResponseReturnValue:
        number = _list_page(request.args)
        if number is None:
            abort(400, "Bad parameter: page must be a whole number from 1 (and nothing else).")
        total = await store().count_queries()
        pages = max(1, math.ceil(total / QUERIES_PER_PAGE))
        if number > pages:
            abort(404, f"Page {number} is past the last page ({pages}) of the stored queries.")
        rows = await store().queries_page((number - 1) * QUERIES_PER_PAGE, QUERIES_PER_PAGE)
        return await render_template(
            "search/queries.html", queries=rows, total=total, page=number, pages=pages
        )

    def results_key(query_id: int) -> tuple[str, tuple[str, ...]] | None:
        """The page's canonical key (its parsed parameters); None for a request the view
        refuses (a bad or unknown parameter), which is not looked up nor stored."""
        if state.config is None or _odd_parameters(request.args):
            return None
        try:
            wanted = parse_page_request(request.args, state.config)
        except PagingError:
            return None
        return _link(query_id, wanted.with_()), (_query_generation(query_id),)

    @blueprint.get("/search/queries/<int:query_id>")
    @cache.cached_by(results_key)
    async def results(query_id: int) -> ResponseReturnValue:
        conf = config()
        odd = _odd_parameters(request.args)
        if odd:
            abort(400, f"Bad parameter: {odd}.")
        try:
            wanted = parse_page_request(request.args, conf)
        except PagingError as exc:
            abort(400, f"Bad parameter: {exc}.")
        if query_id > 2**63 - 1:
            abort(404, "No such query.")
        query = await store().get_query(query_id)
        if query is None:
            abort(404, f"There is no stored query {query_id}.")
        api_error = query.refused
        needed = wanted.api_pages_needed(conf.api_page_size)
        if query.refused is None and query.has_more and query.pages_fetched < needed:
            before = query.pages_fetched
            try:
                query = await fetch_until(
                    query,
                    needed,
                    source=client(),
                    store=store(),
                    api_page_size=conf.api_page_size,
                )
            except SearchApiError as exc:
                api_error = str(exc)
                query = await store().get_query(query_id) or query
            if query.pages_fetched != before:
                await cache.bump(_query_generation(query_id), LISTS)
        # Past what one view may fetch (MAX_API_PAGES_PER_REQUEST): the rows are not there
        # yet; the page says so and is not cached (the next view fetches more).
        incomplete = (
            api_error is None
            and query.refused is None
            and query.has_more
            and query.pages_fetched < needed
        )
        total = query.result_count
        pages = max(1, math.ceil(total / wanted.per_page))
        if wanted.page > pages and api_error is None and not query.has_more:
            abort(404, f"Page {wanted.page} is past the last page ({pages}) of these results.")
        rows = await store().results(
            query_id,
            sort=wanted.sort,
            order=wanted.order,
            offset=wanted.offset,
            limit=wanted.per_page,
        )
        page = await render_template(
            "search/results.html",
            query=query,
            rows=rows,
            wanted=wanted,
            pages=pages,
            has_next=wanted.page < pages or query.has_more,
            api_error=api_error,
            incomplete=incomplete,
            config=conf,
            columns=COLUMN_TITLES,
            sort_link=lambda column: _sort_link(query_id, wanted, column),
            page_link=lambda **changes: _link(query_id, wanted.with_(**changes)),
            size_link=lambda size: _link(
                query_id, wanted.with_(per_page=size, page=wanted.offset // size + 1)
            ),
        )
        # A failed API call shows what is stored, with the reason; such a page is not cached.
        if api_error is not None:
            return page, 502
        if incomplete:
            return page, 200, {"Cache-Control": "no-store"}
        return page, 200

    @blueprint.websocket("/search/ws")
    async def notices() -> None:
        await websocket.accept()
        with state.hub.subscribe() as receive:
            async with trio.open_nursery() as nursery:
                # What the page sends is read and dropped in a task of its own: a chatty
                # client cannot hold up the notices nor the noticing of its disconnect.
                nursery.start_soon(_discard_incoming)
                async for notice in receive:
                    await websocket.send(notice.to_json().decode())
                nursery.cancel_scope.cancel()
        # The hub closed: serving stops ("going away"; the page reconnects to another worker).
        await websocket.close(1001, "the server is stopping")

    return blueprint


def _client(
    http: httpx.AsyncClient,
    config: SearchConfig,
    *,
    max_backoff_wait_s: float,
    backoffs: Backoffs,
) -> StackExchangeClient:
    return StackExchangeClient(
        http,
        config.api_url,
        timeout_s=config.request_timeout_s,
        sort=config.api_sort,
        order=config.api_order,
        key=config.api_key,
        max_backoff_wait_s=max_backoff_wait_s,
        backoffs=backoffs,
    )


async def _discard_incoming() -> None:
    while True:
        await websocket.receive()


def _list_page(args: Any) -> int | None:
    """The page of /search/queries asked for (``?page=``, default 1), None if malformed."""
    if set(args) - {"page"} or len(args.getlist("page")) > 1:
        return None
    raw = args.get("page", "1")
    if _LIST_PAGE.fullmatch(raw) is None or int(raw) < 1:
        return None
    return int(raw)


def _odd_parameters(args: Any) -> str | None:
    """What is wrong with the results page's query parameters beyond their values (an
    unknown one, one given twice), or None."""
    unknown = sorted(set(args) - PAGE_PARAMETERS)
    if unknown:
        names = ", ".join(name[:40] for name in unknown[:5])
        return f"unknown {names} (known: {', '.join(sorted(PAGE_PARAMETERS))})"
    repeated = sorted(name for name in PAGE_PARAMETERS if len(args.getlist(name)) > 1)
    if repeated:
        return f"{', '.join(repeated)} given more than once"
    return None


def _query_generation(query_id: int) -> str:
    """The cache generation of a query's results pages."""
    return f"query:{query_id}"


def _link(query_id: int, params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return f"/search/queries/{query_id}?{urlencode(params)}"


def _sort_link(query_id: int, wanted: PageRequest, column: str) -> str:
    if column == wanted.sort:
        order = "asc" if wanted.order == "desc" else "desc"
    else:
        order = "desc" if column in _DESCENDING_FIRST else "asc"
    return _link(query_id, wanted.with_(sort=column, order=order, page=1))
