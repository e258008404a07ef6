"""Log-in attempts, limited per email and per client over a sliding window. No I/O."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """At most ``per_email`` failed log-ins per email and ``per_client`` per client address
    within ``window_s``; past that, :meth:`attempt` refuses until old failures age out.

    An attempt counts as a failure from the moment it starts (so requests sent in parallel
    cannot all pass the check before any of them failed); :meth:`succeeded` takes it back.
    Kept in memory per worker, for at most ``max_keys`` emails and clients (the oldest are
    forgotten first): a password guesser spread over several workers gets that many tries
    per worker.
    """

    def __init__(
        self,
        *,
        per_email: int = 5,
        per_client: int = 20,
        window_s: float = 300.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"email": per_email, "client": per_client}
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def attempt(self, email: str, client: str) -> bool:
        """Start a log-in: ``False`` (refuse it) if either key is over its limit; else the
        attempt is counted as a failure until :meth:`succeeded` says otherwise."""
        now = self._clock()
        keys = self._keys(email, client)
        if any(len(self._recent(key, now)) >= limit for key, limit in keys):
            return False
        for key, _limit in keys:
            self._record(key, now)
        return True

    def succeeded(self, email: str, client: str) -> None:
        """The attempt was right: forget the email's failures and take back the client's."""
        self._failures.pop(("email", email.lower()), None)
        failures = self._failures.get(("client", client))
        if failures:
            failures.pop()
            if not failures:
                del self._failures[("client", client)]

    def _keys(self, email: str, client: str) -> list[tuple[Hashable, int]]:
        return [
            (("email", email.lower()), self._limits["email"]),
            (("client", client), self._limits["client"]),
        ]

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _record(self, key: Hashable, now: float) -> None:
        failures = self._failures.setdefault(key, deque())
        failures.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        """Keys remembered now (for tests and the curious)."""
        return len(self._failures)
