"""Rate limits kept in Redis, so they hold across workers and hosts; while Redis is away,
each worker counts in memory (logged once per outage)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

import coredis

from .rate_limits import Attempt, Limit, MemoryRateLimiter, Verdict
from .redis_guard import REDIS_TIMEOUT_S, RETRY_AFTER_S, RedisGuard, RedisUnavailable

__all__ = ["KEY_PREFIX", "REDIS_TIMEOUT_S", "RETRY_AFTER_S", "RedisRateLimiter"]

logger = logging.getLogger("service.platform.redis_rate_limits")

#: Every counter's Redis key starts with this (a sorted set of attempt ids by time).
KEY_PREFIX = "ratelimit:"

# One sliding window per key, checked and counted in one atomic step on the server's clock:
# drop the attempts older than the window; if any key is full, count nothing and answer how
# many ms until it has room; else add this attempt to every key. KEYS: the counters;
# ARGV: the attempt's id, then a limit and a window (ms) per key.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now, 1)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""

RedisSource = Callable[[], "coredis.Redis[bytes] | None"]


class RedisRateLimiter:
    """A :class:`~service.platform.rate_limits.RateLimiter` on the Redis that ``redis()``
    returns (the platform's shared client; None when there is none yet, or none at all).

    Without Redis, or while it fails (an error or over ``REDIS_TIMEOUT_S``), the attempts
    are counted in ``local``, this worker's memory: a limit then holds per worker. The
    first failure of an outage is logged (one line, whatever the traffic), and so is the
    first answer after it; Redis is tried again ``RETRY_AFTER_S`` after a failure.
    """

    def __init__(
        self,
        redis: RedisSource,
        local: MemoryRateLimiter | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.local = local if local is not None else MemoryRateLimiter(clock=clock)
        self._guard = RedisGuard(on_failure=self._failed, on_recovery=self._answered, clock=clock)

    async def hit(self, limits: Sequence[Limit]) -> Verdict:
        redis = self._redis()
        if redis is None:
            return self.local.hit_now(limits)
        attempt = Attempt(secrets.token_hex(8), shared=True)
        args: list[str | int] = [attempt.id]
        for limit in limits:
            args += [limit.rate.limit, max(1, round(limit.rate.window_s * 1000))]
        keys = [KEY_PREFIX + limit.key for limit in limits]
        try:
            wait_ms = await self._guard.call(lambda: redis.eval(_HIT, keys, args))
        except RedisUnavailable:
            return self.local.hit_now(limits)
        if not isinstance(wait_ms, int):
            raise TypeError(f"the rate limit script answered {wait_ms!r}")
        return Verdict(attempt) if wait_ms == 0 else Verdict(None, wait_ms / 1000)

    async def take_back(self, attempt: Attempt, key: str) -> None:
        if not attempt.shared:
            self.local.take_back_now(attempt, key)
            return
        await self._call(lambda redis: redis.zrem(KEY_PREFIX + key, [attempt.id]))

    async def forget(self, key: str) -> None:
        await self.local.forget(key)
        await self._call(lambda redis: redis.delete([KEY_PREFIX + key]))

    async def _call(self, action: Callable[[coredis.Redis[bytes]], Awaitable[object]]) -> None:
        redis = self._redis()
        if redis is None:
            return
        with contextlib.suppress(RedisUnavailable):
            await self._guard.call(lambda: action(redis))

    @staticmethod
    def _failed(exc: BaseException, first: bool) -> None:
        if first:
            logger.warning(
                "rate limits: Redis failed (%r); each worker counts on its own until it is back",
                exc,
            )

    @staticmethod
    def _answered() -> None:
        logger.warning("rate limits: Redis answers again; the limits hold across workers")

    @property
    def degraded(self) -> bool:
        """Whether the last call to Redis failed (the limits hold per worker meanwhile)."""
        return self._guard.down
