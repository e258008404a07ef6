"""The API's backoffs (and throttling), shared by every client of every process: a page's
client, the refresher's, the standalone command's, in every worker. Kept in Redis as
``search:backoff:<method>`` with the wait as its expiry; while Redis is away each process
goes by what it has seen itself (the process-local state, always kept as well)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

import coredis

from ..platform.log_throttle import LogThrottle
from ..platform.redis_guard import RedisGuard, RedisUnavailable

__all__ = ["BACKOFF_KEY", "Backoffs", "LocalBackoffs", "RedisBackoffs"]

logger = logging.getLogger("service.search.backoff")

#: The Redis key of a method's backoff (``{method}`` is the API method, e.g. ``search``).
BACKOFF_KEY = "search:backoff:{method}"
#: One "Redis is down" line per this many seconds.
LOG_EVERY_S = 30.0


class Backoffs(Protocol):
    """Where a method's "not before" is kept."""

    async def remaining_s(self, method: str) -> float:
        """Seconds before ``method`` may be called again (0 when it may now)."""
        ...

    async def hold(self, method: str, seconds: float) -> None:
        """No call of ``method`` for ``seconds`` (a longer hold already there stays)."""
        ...


class LocalBackoffs:
    """This process's backoffs (one instance shared by the process's clients)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._not_before: dict[str, float] = {}

    async def remaining_s(self, method: str) -> float:
        return self.remaining_now(method)

    def remaining_now(self, method: str) -> float:
        until = self._not_before.get(method)
        if until is None:
            return 0.0
        wait_s = until - self._clock()
        if wait_s <= 0:
            del self._not_before[method]
            return 0.0
        return wait_s

    async def hold(self, method: str, seconds: float) -> None:
        self.hold_now(method, seconds)

    def hold_now(self, method: str, seconds: float) -> None:
        until = self._clock() + seconds
        self._not_before[method] = max(until, self._not_before.get(method, until))


class RedisBackoffs:
    """Backoffs in Redis (``SET search:backoff:<method> 1 PX <ms>``, read with ``PTTL``),
    seen by every process on that Redis; the process-local ones are kept too and decide
    while Redis does not answer."""

    def __init__(
        self,
        redis: coredis.Redis[bytes] | None,
        local: LocalBackoffs | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.local = local or LocalBackoffs(clock)
        self._throttle = LogThrottle(LOG_EVERY_S, clock)
        self._guard = RedisGuard(on_failure=self._log, clock=clock)

    async def remaining_s(self, method: str) -> float:
        local = self.local.remaining_now(method)
        redis = self._redis
        if redis is None:
            return local
        key = BACKOFF_KEY.format(method=method)
        try:
            ttl_ms = await self._guard.call(lambda: redis.pttl(key))
        except RedisUnavailable:
            return local
        return max(local, ttl_ms / 1000 if ttl_ms > 0 else 0.0)

    async def hold(self, method: str, seconds: float) -> None:
        self.local.hold_now(method, seconds)
        redis = self._redis
        if redis is None:
            return
        key = BACKOFF_KEY.format(method=method)
        ms = max(1, int(seconds * 1000))
        # GT would keep a longer hold, but needs Redis 7; a shorter one that replaces
        # a longer one costs at most a few early calls, answered by a new backoff.
        with contextlib.suppress(RedisUnavailable):
            await self._guard.call(lambda: redis.set(key, b"1", px=ms))

    def _log(self, exc: BaseException, _first: bool) -> None:
        held_back = self._throttle.admit("redis")
        if held_back is not None:
            logger.warning(
                "backoffs: Redis failed (%r); going by this process's backoffs%s",
                exc,
                f" ({held_back} more failures since the last line)" if held_back else "",
            )
