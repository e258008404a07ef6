"""One way to call a Redis that may be away: every call bounded by a timeout, and after a
failure Redis left alone for a while, so a hung Redis costs one timeout every
``RETRY_AFTER_S``, not one per request. The response cache, the rate limits and the
search's backoffs each fall back to something of their own while it is down; how they call
Redis, and when they say so, is this one object."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import coredis
import trio

__all__ = [
    "REDIS_ERRORS",
    "REDIS_TIMEOUT_S",
    "RETRY_AFTER_S",
    "RedisGuard",
    "RedisUnavailable",
]

T = TypeVar("T")

#: A Redis call that takes longer is given up on (the caller's fallback decides).
REDIS_TIMEOUT_S = 0.5
#: After a failure, Redis is not asked again for this long.
RETRY_AFTER_S = 2.0
#: What a Redis call that failed raises: Redis's errors, the timeout, the network's.
REDIS_ERRORS = (coredis.exceptions.RedisError, trio.TooSlowError, OSError)

#: ``on_failure(error, first)``: ``first`` is true for the first failure of an outage.
OnFailure = Callable[[BaseException, bool], None]


class RedisUnavailable(Exception):
    """Redis was not asked (it failed less than ``RETRY_AFTER_S`` ago: ``cause`` is None),
    or it failed now (``cause``)."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__("Redis is unavailable" if cause is None else f"Redis failed: {cause!r}")
        self.cause = cause


class RedisGuard:
    """Calls Redis through :meth:`call`; tells ``on_failure`` of each failure, and
    ``on_recovery`` of the first answer after an outage."""

    def __init__(
        self,
        *,
        on_failure: OnFailure,
        on_recovery: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = REDIS_TIMEOUT_S,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        self._on_failure = on_failure
        self._on_recovery = on_recovery
        self._clock = clock
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._not_before = 0.0
        self._down = False

    @property
    def down(self) -> bool:
        """Whether the last call failed (until one answers again)."""
        return self._down

    def skipping(self) -> bool:
        """Whether a call now would not ask Redis (it failed less than a while ago)."""
        return self._clock() < self._not_before

    async def call(self, action: Callable[[], Awaitable[T]]) -> T:
        """``await action()`` within the timeout; raises :class:`RedisUnavailable` if Redis
        is being left alone, or if the call failed (then it is left alone for a while)."""
        if self.skipping():
            raise RedisUnavailable(None)
        try:
            with trio.fail_after(self._timeout_s):
                result = await action()
        except REDIS_ERRORS as exc:
            self._not_before = self._clock() + self._retry_after_s
            first, self._down = not self._down, True
            self._on_failure(exc, first)
            raise RedisUnavailable(exc) from exc
        if self._down:
            self._down = False
            if self._on_recovery is not None:
                self._on_recovery()
        return result
