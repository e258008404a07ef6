"""The worker's one Redis client, shared by the capabilities (the search's cache, notices
and backoffs; the rate limits): opened when serving starts, before any capability, and
closed after every capability (platform/lifespan.py holds it)."""

from __future__ import annotations

import coredis
from quart_trio import QuartTrio

from .lifespan import WhileServing, hold_while_serving
from .response_cache import open_redis

__all__ = ["SharedRedis"]


class SharedRedis:
    """Holds the client while the app serves; ``None`` before, after, and without a URL.
    Its calls fail fast (no retries, short timeouts; see ``open_redis``). Calling the
    holder returns the client (a ``RedisSource``)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._held: WhileServing[coredis.Redis[bytes]] | None = None

    def __call__(self) -> coredis.Redis[bytes] | None:
        return self._held() if self._held is not None else None

    def install(self, app: QuartTrio) -> None:
        """Open the client when ``app`` starts serving: call this before the capabilities'
        blueprints are registered (they find it open, and it closes after them)."""
        url = self.url
        self._held = hold_while_serving(
            app, lambda: open_redis(url) if url is not None else None, name="the Redis client"
        )
