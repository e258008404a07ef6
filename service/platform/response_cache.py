"""A response cache on Redis for GET pages, with a TTL and ``X-Cache: HIT|MISS``. A view's key
is its full path and query string, or what its key function makes of the request (the
parsed, canonical parameters), plus the current numbers of the generations it names: a change
bumps a generation (``INCR``, O(1)) and every page keyed on it is out of reach at once. Redis
down or slow: the page is served uncached, and logged.

A cached page is one that every visitor who is not logged in shares. A logged-in viewer's
page names them (the navigation): it is rendered for them, never looked up nor stored
(``X-Cache: BYPASS``, ``Cache-Control: private``)."""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import coredis
import coredis.retry
import orjson
from quart import Response, make_response, request
from quart.typing import ResponseReturnValue

from .log_throttle import LogThrottle
from .navigation import current_viewer
from .redis_guard import REDIS_TIMEOUT_S, RedisGuard, RedisUnavailable

__all__ = ["REDIS_TIMEOUT_S", "ResponseCache", "open_redis"]

logger = logging.getLogger("service.platform.response_cache")

#: One "Redis is down" line per this many seconds, with the count held back.
LOG_EVERY_S = 30.0

View = Callable[..., Awaitable[ResponseReturnValue]]
#: From a view's arguments (in a request context): the page's canonical path and the names
#: of the generations it depends on; None when the request is not cacheable as it is (the
#: view answers it, uncached: a bad parameter's 400, say).
KeyFunction = Callable[..., tuple[str, Sequence[str]] | None]


@asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    """A Redis client (coredis, native on trio) whose calls fail fast when the server is away:
    no retries (coredis retries twice by default, which made a hung Redis cost a page twice
    the timeout)."""
    client: coredis.Redis[bytes] = coredis.Redis.from_url(
        url,
        connect_timeout=REDIS_TIMEOUT_S,
        stream_timeout=REDIS_TIMEOUT_S,
        retry_policy=coredis.retry.NoRetryPolicy(),
    )
    async with client:
        yield client


class _Pending:
    """The key a cached view's response will be stored under (updated by its own bumps)."""

    def __init__(self, page: str, names: Sequence[str], key: str | None) -> None:
        self.page = page
        self.names = names
        self.key = key


_pending: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar(
    "response_cache_pending", default=None
)


class ResponseCache:
    """GET responses (status 200, no cookie set, no ``Cache-Control: no-store``, no viewer
    logged in) kept ``ttl_s`` seconds under ``<namespace>:<generations>:<key>``. Every
    failure of Redis is logged (throttled) and the page is served as if there were no
    cache: never an error page because of the cache."""

    def __init__(
        self,
        redis: coredis.Redis[bytes] | None,
        *,
        ttl_s: int,
        namespace: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: None until the worker has opened Redis (and when there is none): no caching.
        self.redis = redis
        self._ttl_s = ttl_s
        self._namespace = namespace
        self._throttle = LogThrottle(LOG_EVERY_S, clock)
        self._guard = RedisGuard(on_failure=self._log_failure, clock=clock)

    def key(self, page: str, generations: Sequence[int] = ()) -> str:
        numbers = ".".join(map(str, generations))
        return f"{self._namespace}:g{numbers}:{page}"

    def generation_key(self, name: str) -> str:
        return f"{self._namespace}:gen:{name}"

    async def generations(self, names: Sequence[str]) -> list[int] | None:
        """The current number of each generation (0 if never bumped); None if Redis does not
        answer (the page is then served uncached)."""
        if not names:
            return [] if self.redis is not None else None
        keys = [self.generation_key(name) for name in names]
        raw = await self._call("MGET", lambda redis: redis.mget(keys))
        if raw is None:
            return None
        return [int(value) if value is not None else 0 for value in raw]

    async def bump(self, *names: str) -> None:
        """The pages keyed on these generations are stale (after a change): one ``INCR``
        each; the old entries expire with their TTL. The counters have no TTL (a counter
        that expired could count up to a number whose old pages still live)."""
        for name in names:
            await self._call("INCR", functools.partial(_incr, key=self.generation_key(name)))
        pending = _pending.get()
        if pending is not None and pending.key is not None and set(names) & set(pending.names):
            # The view changed what its page shows, and reads it after this: its page is
            # current as of the new numbers (a change after this bumps again).
            numbers = await self.generations(pending.names)
            pending.key = None if numbers is None else self.key(pending.page, numbers)

    async def lookup(self, key: str) -> Response | None:
        """The cached response under ``key`` (from :meth:`key`), if any."""
        raw = await self._call("GET", lambda redis: redis.get(key))
        if not isinstance(raw, bytes):
            return None
        head, _, body = raw.partition(b"\n")
        meta = orjson.loads(head)
        return Response(body, status=int(meta["status"]), headers=meta["headers"])

    async def store(self, key: str, response: Response) -> None:
        """Keep ``response`` (its body read in full) for the TTL."""
        body = await response.get_data(as_text=False)
        headers = [[name, value] for name, value in response.headers.items() if name != "X-Cache"]
        head = orjson.dumps({"status": response.status_code, "headers": headers})
        await self._call(
            "SET",
            lambda redis: redis.set(key, head + b"\n" + body, ex=self._ttl_s),
        )

    def cached(self, view: View) -> View:
        """Decorate a GET view keyed by its full path and query string (no generations)."""
        return self.cached_by(lambda *_args, **_kwargs: (request.full_path, ()))(view)

    def cached_by(self, make_key: KeyFunction) -> Callable[[View], View]:
        """Decorate a GET view: answer from the cache, else run it and keep a 200. The
        generations are read before the view runs, so a page rendered from rows a change
        has since replaced is stored under the old numbers, out of reach. A view that
        changes its own page's rows calls :meth:`bump` before reading them: its page is
        then stored under the new numbers."""

        def decorate(view: View) -> View:
            @functools.wraps(view)
            async def wrapper(*args: Any, **kwargs: Any) -> Response:
                # Read once per request: the page's navigation shows the same viewer.
                if await current_viewer() is not None:
                    return await _personal(await view(*args, **kwargs))
                made = make_key(*args, **kwargs)
                key = None
                if made is not None:
                    page, names = made
                    numbers = await self.generations(names)
                    if numbers is not None:
                        key = self.key(page, numbers)
                if key is not None:
                    hit = await self.lookup(key)
                    if hit is not None:
                        hit.headers["X-Cache"] = "HIT"
                        hit.vary.add("Cookie")
                        return hit
                pending = None if made is None else _Pending(made[0], made[1], key)
                token = _pending.set(pending)
                try:
                    result = await view(*args, **kwargs)
                finally:
                    _pending.reset(token)
                response = cast(Response, await make_response(result))
                if pending is not None and pending.key is not None and _storable(response):
                    await self.store(pending.key, response)
                response.headers["X-Cache"] = "MISS"
                response.vary.add("Cookie")  # a logged-in viewer's cookie: another page
                return response

            return wrapper

        return decorate

    async def _call(self, what: str, action: Callable[[coredis.Redis[bytes]], Any]) -> Any:
        redis = self.redis
        if redis is None:
            return None
        try:
            return await self._guard.call(functools.partial(action, redis))
        except RedisUnavailable as exc:
            if exc.cause is not None:
                logger.debug("response cache: Redis %s failed", what)
            return None

    def _log_failure(self, exc: BaseException, _first: bool) -> None:
        held_back = self._throttle.admit("redis")
        if held_back is not None:
            logger.warning(
                "response cache: Redis failed (%r); serving uncached%s",
                exc,
                f" ({held_back} more failures since the last line)" if held_back else "",
            )


async def _personal(result: ResponseReturnValue) -> Response:
    """A logged-in viewer's page: not from the cache, not into it, nor into a shared one."""
    response = cast(Response, await make_response(result))
    response.headers["X-Cache"] = "BYPASS"
    response.cache_control.private = True
    response.vary.add("Cookie")
    return response


async def _incr(redis: coredis.Redis[bytes], *, key: str) -> int:
    return await redis.incr(key)


def _storable(response: Response) -> bool:
    cache_control = response.headers.get("Cache-Control", "")
    return (
        response.status_code == 200
        and "Set-Cookie" not in response.headers
        and "no-store" not in cache_control
    )
