"""Password hashing with argon2id, off the event loop."""

from __future__ import annotations

import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["Passwords"]


class Passwords:
    """Hashes and checks passwords with argon2id (argon2-cffi's defaults: RFC 9106's low-memory
    profile) in worker threads, at most ``max_threads`` at once.

    Hashing costs tens of milliseconds of CPU on purpose: on the event loop it would stall
    every request of the worker, so it runs in a thread; the limiter keeps a burst of
    log-ins from taking every core. :meth:`cheap` is for tests only.
    """

    def __init__(self, hasher: PasswordHasher | None = None, *, max_threads: int = 2) -> None:
        self._hasher = hasher or PasswordHasher()
        self._limiter = trio.CapacityLimiter(max_threads)

    @classmethod
    def cheap(cls) -> Passwords:
        """Minimal cost parameters: fast tests. Never for real passwords."""
        return cls(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` (salted: equal passwords hash differently)."""
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``; ``False`` for a malformed hash."""
        return await trio.to_thread.run_sync(
            self._check, password_hash, password, limiter=self._limiter
        )

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
