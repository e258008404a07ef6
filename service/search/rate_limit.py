"""A token bucket per client for creating queries (each new query costs API quota as soon as
its page is viewed): pure logic on a clock, kept per worker (see docs/search.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """``per_minute`` tokens a minute per key, at most ``per_minute`` saved up (the burst).
    At most ``max_keys`` keys are remembered; past that, the full buckets (keys that have
    not taken a token for a minute) are forgotten, then the oldest."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = float(per_minute)
        self._rate_per_s = per_minute / 60.0
        self._max_keys = max_keys
        self._clock = clock
        #: key -> (tokens, when they were counted)
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def _tokens(self, key: Hashable) -> float:
        now = self._clock()
        tokens, then = self._buckets.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - then) * self._rate_per_s)

    def allows(self, key: Hashable) -> bool:
        """Whether ``key`` has a token (none is taken)."""
        return self._tokens(key) >= 1.0

    def wait_s(self, key: Hashable) -> float:
        """Seconds until ``key`` has a token again."""
        missing = 1.0 - self._tokens(key)
        return max(0.0, missing / self._rate_per_s)

    def take(self, key: Hashable) -> None:
        """Take a token of ``key`` (its bucket may go below one; it refills)."""
        tokens = self._tokens(key) - 1.0
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens, self._clock())
        if len(self._buckets) > self._max_keys:
            self._forget()

    def _forget(self) -> None:
        full = [key for key in self._buckets if self._tokens(key) >= self._capacity]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
