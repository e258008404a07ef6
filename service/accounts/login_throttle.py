"""Log-in and registration attempts, limited per email and per client over a sliding
window, on the platform's rate limiter (Redis: across workers and hosts)."""

from __future__ import annotations

from ..platform.rate_limits import Limit, MemoryRateLimiter, Rate, RateLimiter, Verdict
from .emails import caseless

__all__ = ["LOGIN_WINDOW_S", "LoginThrottle"]

#: The log-in limits' window: 5 minutes.
LOGIN_WINDOW_S = 300.0


class LoginThrottle:
    """At most ``per_email`` failed log-ins per email and ``per_client`` per client address
    within ``window_s``, and ``register`` registrations per client address (each costs a
    password hash); past that, :meth:`attempt` and :meth:`register` refuse until old ones
    age out.

    A log-in counts as a failure from the moment it starts (so requests sent in parallel
    cannot all pass the check before any of them failed); :meth:`succeeded` takes it back.
    The counters are the limiter's: in Redis they hold across every worker and host; in
    memory (no Redis, or Redis away) per worker.
    """

    def __init__(
        self,
        limiter: RateLimiter | None = None,
        *,
        per_email: int = 5,
        per_client: int = 20,
        window_s: float = LOGIN_WINDOW_S,
        register: Rate | None = None,
    ) -> None:
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryRateLimiter()
        self._per_email = Rate(per_email, window_s)
        self._per_client = Rate(per_client, window_s)
        self._register = register or Rate(10, 60.0)

    async def attempt(self, email: str, client: str) -> Verdict:
        """Start a log-in: refused (``not verdict.allowed``) if either key is over its
        limit; else counted as a failure until :meth:`succeeded` says otherwise."""
        return await self.limiter.hit(
            [
                Limit(_email_key(email), self._per_email),
                Limit(_client_key(client), self._per_client),
            ]
        )

    async def succeeded(self, email: str, client: str, verdict: Verdict) -> None:
        """The attempt was right: forget the email's failures and take back the client's."""
        await self.limiter.forget(_email_key(email))
        if verdict.attempt is not None:
            await self.limiter.take_back(verdict.attempt, _client_key(client))

    async def register(self, client: str) -> Verdict:
        """Start a registration from ``client`` (counted whatever its outcome)."""
        return await self.limiter.hit([Limit(f"register:client:{client}", self._register)])


def _email_key(email: str) -> str:
    # Caseless, as emails are unique: `STRASSE@x` and `straße@x` share their failures.
    return f"login:email:{caseless(email)}"


def _client_key(client: str) -> str:
    return f"login:client:{client}"
