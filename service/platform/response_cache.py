"""A response cache on Redis for GET pages: keyed by the full path and query string, with a
TTL, ``X-Cache: HIT|MISS``. Redis down or slow: the page is served uncached, and logged."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import coredis
import coredis.retry
import orjson
import trio
from quart import Response, make_response, request
from quart.typing import ResponseReturnValue

from .log_throttle import LogThrottle

__all__ = ["ResponseCache", "open_redis"]

logger = logging.getLogger("service.platform.response_cache")

#: A Redis call that takes longer is given up on (the page is served without the cache).
REDIS_TIMEOUT_S = 0.5
#: After a failure, Redis is not tried again for this long (no timeout per request meanwhile).
RETRY_AFTER_S = 2.0
#: One "Redis is down" line per this many seconds, with the count held back.
LOG_EVERY_S = 30.0

View = Callable[..., Awaitable[ResponseReturnValue]]


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


class ResponseCache:
    """GET responses (status 200, no cookie set) kept ``ttl_s`` seconds under
    ``<namespace>:<full path>``. Every failure of Redis is logged (throttled) and the page is
    served as if there were no cache: never an error page because of the cache."""

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
        self._clock = clock
        self._down_until = 0.0
        self._throttle = LogThrottle(LOG_EVERY_S, clock)

    def key(self, full_path: str) -> str:
        return f"{self._namespace}:{full_path}"

    async def lookup(self, full_path: str) -> Response | None:
        """The cached response of this path and query, if any."""
        raw = await self._call("GET", lambda redis: redis.get(self.key(full_path)))
        if not isinstance(raw, bytes):
            return None
        head, _, body = raw.partition(b"\n")
        meta = orjson.loads(head)
        return Response(body, status=int(meta["status"]), headers=meta["headers"])

    async def store(self, full_path: str, response: Response) -> None:
        """Keep ``response`` (its body read in full) for the TTL."""
        body = await response.get_data(as_text=False)
        headers = [[name, value] for name, value in response.headers.items() if name != "X-Cache"]
        head = orjson.dumps({"status": response.status_code, "headers": headers})
        await self._call(
            "SET",
            lambda redis: redis.set(self.key(full_path), head + b"\n" + body, ex=self._ttl_s),
        )

    async def forget(self, path_prefix: str) -> None:
        """Drop every cached page whose path starts with ``path_prefix`` (after a change)."""

        async def drop(redis: coredis.Redis[bytes]) -> None:
            pattern = _glob_escape(self.key(path_prefix)) + "*"
            keys = [key async for key in redis.scan_iter(match=pattern)]
            if keys:
                await redis.delete(keys)

        await self._call("DEL", drop)

    def cached(self, view: View) -> View:
        """Decorate a GET view: answer from the cache, else run it and keep a 200."""

        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Response:
            full_path = request.full_path
            hit = await self.lookup(full_path)
            if hit is not None:
                hit.headers["X-Cache"] = "HIT"
                return hit
            response = cast(Response, await make_response(await view(*args, **kwargs)))
            if response.status_code == 200 and "Set-Cookie" not in response.headers:
                await self.store(full_path, response)
            response.headers["X-Cache"] = "MISS"
            return response

        return wrapper

    async def _call(self, what: str, action: Callable[[coredis.Redis[bytes]], Any]) -> Any:
        if self.redis is None or self._clock() < self._down_until:
            return None
        try:
            with trio.fail_after(REDIS_TIMEOUT_S):
                return await action(self.redis)
        except (coredis.exceptions.RedisError, trio.TooSlowError, OSError) as exc:
            self._down_until = self._clock() + RETRY_AFTER_S
            held_back = self._throttle.admit("redis")
            if held_back is not None:
                logger.warning(
                    "response cache: Redis %s failed (%r); serving uncached%s",
                    what,
                    exc,
                    f" ({held_back} more failures since the last line)" if held_back else "",
                )
            return None


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern (``?`` ``*`` ``[`` ``]`` ``\\``)."""
    return "".join("\\" + char if char in "?*[]\\" else char for char in text)
