"""Rate limits over a sliding window: the seam (:class:`RateLimiter`), its rules and the
per-worker implementation in memory. No I/O (the Redis one is in ``redis_rate_limits``)."""

from __future__ import annotations

import math
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .source_config import SettingsError

__all__ = ["Attempt", "Limit", "MemoryRateLimiter", "Rate", "RateLimiter", "Verdict"]

_UNITS_S = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_RATE = re.compile(r"\s*([0-9]{1,9})\s*/\s*(second|minute|hour)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` attempts in any ``window_s`` seconds."""

    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not (math.isfinite(self.window_s) and self.window_s > 0):
            raise SettingsError(f"a rate needs a limit >= 1 and a window > 0, got {self}")

    @classmethod
    def parse(cls, text: str, what: str) -> Rate:
        """``N/second``, ``N/minute`` or ``N/hour`` (``10/minute``); ``what`` names the
        setting in the error."""
        match = _RATE.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise SettingsError(
                f"{what} must be N/second, N/minute or N/hour with N >= 1 (like 10/minute),"
                f" got {text[:40]!r}"
            )
        return cls(int(match.group(1)), _UNITS_S[match.group(2).lower()])

    def __str__(self) -> str:
        for unit, seconds in _UNITS_S.items():
            if self.window_s == seconds:
                return f"{self.limit}/{unit}"
        return f"{self.limit}/{self.window_s:g}s"


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter (``key``, e.g. ``login:email:a@example.com``) and its rate."""

    key: str
    rate: Rate


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt that was let through and counted: ``take_back`` can undo it."""

    id: str
    #: Counted in the shared store (Redis), not in this worker's memory.
    shared: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an attempt may go on; if not, how long until it may."""

    attempt: Attempt | None
    retry_after_s: float = 0.0

    @property
    def allowed(self) -> bool:
        return self.attempt is not None

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` in whole seconds (at least 1)."""
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimiter(Protocol):
    """Counts attempts per key over a sliding window. An attempt counts from the moment it
    is let through (so attempts in parallel cannot all pass the check before any is
    counted) until it ages out of its window, or is taken back."""

    async def hit(self, limits: Sequence[Limit]) -> Verdict:
        """Let an attempt through if every limit has room, and count it on every key; else
        count nothing and say how long until each over-full key has room again."""
        ...

    async def take_back(self, attempt: Attempt, key: str) -> None:
        """Uncount ``attempt`` on ``key`` (it turned out not to count: a right password)."""
        ...

    async def forget(self, key: str) -> None:
        """Uncount every attempt on ``key``."""
        ...


class MemoryRateLimiter:
    """This worker's counters, in memory (a limit holds per worker only): the
    implementation when there is no Redis, and the fallback while Redis is away. At most
    ``max_keys`` keys are kept; the least recently counted are forgotten first."""

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()

    async def hit(self, limits: Sequence[Limit]) -> Verdict:
        return self.hit_now(limits)

    async def take_back(self, attempt: Attempt, key: str) -> None:
        self.take_back_now(attempt, key)

    async def forget(self, key: str) -> None:
        self._hits.pop(key, None)

    def hit_now(self, limits: Sequence[Limit]) -> Verdict:
        now = self._clock()
        wait_s = 0.0
        for limit in limits:
            hits = self._recent(limit.key, limit.rate.window_s, now)
            if len(hits) >= limit.rate.limit:
                # Room comes when the hit that keeps the count at the limit ages out.
                oldest_counted = hits[len(hits) - limit.rate.limit][0]
                wait_s = max(wait_s, oldest_counted + limit.rate.window_s - now)
        if wait_s > 0:
            return Verdict(None, wait_s)
        attempt = Attempt(secrets.token_hex(8))
        for limit in limits:
            self._hits.setdefault(limit.key, deque()).append((now, attempt.id))
            self._hits.move_to_end(limit.key)
        while len(self._hits) > self._max_keys:
            self._hits.popitem(last=False)
        return Verdict(attempt)

    def take_back_now(self, attempt: Attempt, key: str) -> None:
        hits = self._hits.get(key)
        if hits is None:
            return
        kept = deque(hit for hit in hits if hit[1] != attempt.id)
        if kept:
            self._hits[key] = kept
        else:
            del self._hits[key]

    def _recent(self, key: str, window_s: float, now: float) -> deque[tuple[float, str]]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and now - hits[0][0] >= window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def __len__(self) -> int:
        """Keys remembered now (for tests and the curious)."""
        return len(self._hits)
