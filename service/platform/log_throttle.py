"""Rate-limited log lines: a repeated warning costs one line per interval, not one per request."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["LogThrottle"]


class LogThrottle:
    """Lets one line per key through every ``interval_s`` seconds and counts the rest.

    A source that fails on every request would otherwise write a line per request:
    under load that is thousands of lines a second, and the logging itself becomes
    the overload. The first occurrence of a key is always let through, so a new
    failure is seen at once; the next line of that key says how many were held back.
    """

    __slots__ = ("_clock", "_interval_s", "_last", "_suppressed")

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def admit(self, key: Hashable) -> int | None:
        """``None`` to hold this line back; else how many of ``key`` were held back before it."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)
