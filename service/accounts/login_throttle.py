"""Log-in failures, limited per email and per client, over a sliding window. No I/O."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """At most ``per_email`` failed log-ins per email and ``per_client`` per client address
    within ``window_s``; past that, :meth:`blocked` says so until old failures age out.

    Kept in memory per worker: a password guesser spread over several workers gets at most
    that many tries per worker. A successful log-in clears its email's failures.
    """

    def __init__(
        self,
        *,
        per_email: int = 5,
        per_client: int = 20,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"email": per_email, "client": per_client}
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[Hashable, deque[float]] = {}

    def blocked(self, email: str, client: str) -> bool:
        """Whether a log-in for ``email`` from ``client`` must be refused now."""
        now = self._clock()
        return any(len(self._recent(key, now)) >= limit for key, limit in self._keys(email, client))

    def failed(self, email: str, client: str) -> None:
        """Count a failed log-in."""
        now = self._clock()
        for key, _limit in self._keys(email, client):
            self._recent(key, now).append(now)

    def succeeded(self, email: str) -> None:
        """Forget the email's failures (not the client's)."""
        self._failures.pop(("email", email.lower()), None)

    def _keys(self, email: str, client: str) -> list[tuple[Hashable, int]]:
        return [
            (("email", email.lower()), self._limits["email"]),
            (("client", client), self._limits["client"]),
        ]

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] >= self._window_s:
            failures.popleft()
        return failures
