"""Notices "query X was updated": published on Redis by whoever refreshed (a worker, or the
standalone command), received by every worker, handed to each open page's WebSocket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import coredis
import orjson
import trio

from ..platform.log_throttle import LogThrottle
from ..platform.redis_guard import REDIS_ERRORS
from .models import StoredQuery

__all__ = [
    "CHANNEL",
    "MemoryNotices",
    "Notice",
    "NoticeHub",
    "NoticePublisher",
    "RedisNotices",
    "serve_notice_relay",
]

logger = logging.getLogger("service.search.notices")

#: The Redis channel of the notices.
CHANNEL = "search:notices"
#: Notices a slow page may fall behind by before it misses some.
PAGE_BUFFER = 16
#: One "subscription lost" line per this many seconds while Redis stays away.
LOG_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Notice:
    """A query was updated."""

    query_id: int
    text: str
    site: str
    result_count: int

    @classmethod
    def of(cls, query: StoredQuery, result_count: int) -> Notice:
        return cls(query.id, query.text, query.site, result_count)

    @property
    def message(self) -> str:
        return (
            f'Query "{self.text}" on {self.site} was updated: {self.result_count} results stored.'
        )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "query_id": self.query_id,
                "text": self.text,
                "site": self.site,
                "result_count": self.result_count,
                "message": self.message,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Notice:
        data = orjson.loads(raw)
        return cls(
            int(data["query_id"]), str(data["text"]), str(data["site"]), int(data["result_count"])
        )


class NoticePublisher(Protocol):
    """Where the refresher sends its notices."""

    async def publish(self, notice: Notice) -> None: ...


class MemoryNotices:
    """An in-memory :class:`NoticePublisher` (tests): keeps what was published."""

    def __init__(self) -> None:
        self.published: list[Notice] = []

    async def publish(self, notice: Notice) -> None:
        self.published.append(notice)


class RedisNotices:
    """Publishes on the Redis channel; a failure is logged, never raised (a notice is a
    courtesy: the refresh itself is done)."""

    def __init__(self, redis: coredis.Redis[bytes] | None) -> None:
        self._redis = redis

    async def publish(self, notice: Notice) -> None:
        if self._redis is None:
            return
        try:
            with trio.fail_after(2.0):
                await self._redis.publish(CHANNEL, notice.to_json())
        except REDIS_ERRORS as exc:
            logger.warning("could not publish the notice of query %d: %r", notice.query_id, exc)


class NoticeHub:
    """This worker's open pages: each gets every notice (a page too slow to take them
    misses some rather than holding the others back)."""

    def __init__(self) -> None:
        self._pages: set[trio.MemorySendChannel[Notice]] = set()
        self._closed = False

    @property
    def pages(self) -> int:
        return len(self._pages)

    def open(self) -> None:
        """Take subscriptions (again): serving starts."""
        self._closed = False

    def close(self) -> None:
        """Serving stops: every page's channel ends (its socket is closed with 1001), and a
        page subscribing from now on gets a channel that has ended."""
        self._closed = True
        for page in list(self._pages):
            page.close()
        self._pages.clear()

    @contextmanager
    def subscribe(self) -> Iterator[trio.MemoryReceiveChannel[Notice]]:
        send, receive = trio.open_memory_channel[Notice](PAGE_BUFFER)
        if self._closed:
            send.close()
        else:
            self._pages.add(send)
        try:
            yield receive
        finally:
            self._pages.discard(send)
            send.close()
            receive.close()

    def deliver(self, notice: Notice) -> None:
        for page in list(self._pages):
            try:
                page.send_nowait(notice)
            except trio.WouldBlock:
                logger.debug("a page is behind on notices; this one is dropped for it")
            except trio.BrokenResourceError:
                self._pages.discard(page)


async def serve_notice_relay(
    redis: coredis.Redis[bytes],
    hub: NoticeHub,
    *,
    on_notice: Callable[[Notice], Awaitable[None]] | None = None,
    retry_s: float = 1.0,
) -> None:
    """Relay the channel's notices to ``hub`` (after ``on_notice``) until cancelled. coredis
    re-subscribes by itself when the connection drops; anything else is logged and the
    subscription made again (the warning at most once per :data:`LOG_EVERY_S`)."""
    throttle = LogThrottle(LOG_EVERY_S, trio.current_time)
    while True:
        try:
            await _relay(redis, hub, on_notice)
        except Exception as exc:  # Redis away: the relay outlives it
            held_back = throttle.admit("lost")
            if held_back is not None:
                logger.warning(
                    "notices: Redis subscription lost (%r); retrying every %g s%s",
                    exc,
                    retry_s,
                    f" ({held_back} more failures since the last line)" if held_back else "",
                )
        await trio.sleep(retry_s)


async def _relay(
    redis: coredis.Redis[bytes],
    hub: NoticeHub,
    on_notice: Callable[[Notice], Awaitable[None]] | None,
) -> None:
    try:
        async with redis.pubsub(channels=[CHANNEL], ignore_subscribe_messages=True) as pubsub:
            async for message in _messages(pubsub):
                try:
                    notice = Notice.from_json(message["data"])
                except (ValueError, KeyError, TypeError) as exc:
                    logger.warning("a malformed notice on %s: %r", CHANNEL, exc)
                    continue
                if on_notice is not None:
                    await on_notice(notice)
                hub.deliver(notice)
    except* anyio.ClosedResourceError:
        # coredis 6.9 unsubscribes on a connection it has already closed when the
        # subscription is cancelled (at shutdown); the Cancelled goes on, this is dropped.
        logger.debug("notices: the subscription's connection was already closed")


async def _messages(pubsub: Any) -> AsyncIterator[dict[str, Any]]:
    async for message in pubsub:
        if message.get("type") == "message":
            yield message
