"""The worker's one Redis client, shared by the capabilities (the search's cache, notices
and backoffs; the rate limits): opened when serving starts, closed after every capability."""

from __future__ import annotations

import coredis
import trio
from quart_trio import QuartTrio

from .response_cache import open_redis

__all__ = ["SharedRedis"]


class SharedRedis:
    """Holds the client while the app serves; ``None`` before, after, and without a URL.
    Its calls fail fast (no retries, short timeouts; see ``open_redis``). Calling the
    holder returns the client (a ``RedisSource``)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.client: coredis.Redis[bytes] | None = None
        self._stopping, self._closed = trio.Event(), trio.Event()

    def __call__(self) -> coredis.Redis[bytes] | None:
        return self.client

    def install(self, app: QuartTrio) -> None:
        """Open the client when ``app`` starts serving: call this before the capabilities'
        blueprints are registered (they find it open), and register :meth:`close` with
        ``after_serving`` after theirs (it closes last)."""

        @app.before_serving
        async def open_shared_redis() -> None:
            if self.url is None:
                return
            self._stopping, self._closed = trio.Event(), trio.Event()
            await app.nursery.start(self._keep_open)

    async def close(self) -> None:
        if self.client is None:
            return
        self._stopping.set()
        await self._closed.wait()

    async def _keep_open(self, *, task_status: trio.TaskStatus[None]) -> None:
        assert self.url is not None
        try:
            async with open_redis(self.url) as client:
                self.client = client
                task_status.started()
                await self._stopping.wait()
        finally:
            self.client = None
            self._closed.set()
