"""Raw SQL on triopg's pool: one loop crossing per query, and no request ever waits on a release."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .aio import run_isolated
from .bulkhead import Bulkhead, BulkheadSlot
from .triopg_adapter import create_asyncpg_pool

__all__ = ["PgPool", "open_pg_pool"]

logger = logging.getLogger("service.platform.pg_pool")

#: How long a connection given up on may take to become reusable before it is terminated.
RELEASE_TIMEOUT_S = 1.0


async def _no_reset(_conn: Any) -> None:
    """The service leaves no session state on a connection, so releasing it needs no query."""


class PgPool:
    """One source's pool: asyncpg's pool, opened through triopg, driven from trio.

    Why not triopg's ``acquire()``/``fetch()``: each is its own trip through the
    trio-asyncio loop, and the release runs inside an unbounded shielded cancel
    scope; asyncpg's release first waits for the server to acknowledge the cancel of
    an interrupted query, so a lost cancel or a silent network would hold the request
    for ever. Here acquire, query and release are one asyncio coroutine (one
    crossing). After a clean answer the release is immediate (the reset is a no-op), and
    the rows do not wait for it.
    After a cancel or an error the connection is released in the background, with
    asyncpg's own bounded wait (``RELEASE_TIMEOUT_S``) for the server to acknowledge
    the cancel; if it does not, asyncpg terminates the connection. The request never
    waits for that, and a healthy connection is reused instead of reopened.

    Each query holds a slot of a :class:`Bulkhead` of the pool's size from before the
    acquire until its connection is back in the pool (after that background release,
    too), so an acquire never waits inside asyncpg's pool.
    """

    def __init__(self, asyncpg_pool: Any, loop: Any, max_size: int) -> None:
        self._pool = asyncpg_pool
        self._loop = loop
        self._releasing: set[asyncio.Future[Any]] = set()
        #: Clean releases under way (kept referenced until done).
        self._finishing: set[asyncio.Future[Any]] = set()
        self.bulkhead = Bulkhead(max_size)

    @property
    def size(self) -> int:
        """Connections open now (idle or lent)."""
        return int(self._pool.get_size())

    @property
    def idle(self) -> int:
        """Connections open and waiting in the pool."""
        return int(self._pool.get_idle_size())

    @property
    def releasing(self) -> int:
        """Connections given up on, waiting (at most RELEASE_TIMEOUT_S) to be reusable."""
        return len(self._releasing)

    async def fetch(self, query: str) -> list[Any]:
        """Run ``query`` on a pooled connection; its rows."""
        rows: list[Any] = await self._call("fetch", query)
        return rows

    async def fetchval(self, query: str) -> Any:
        """Run ``query``; the first column of its first row."""
        return await self._call("fetchval", query)

    async def _call(self, method: str, query: str) -> Any:
        await self.bulkhead.acquire()
        slot = BulkheadSlot(self.bulkhead)
        # Freed when the task ends (even if cancelled before it started), unless the
        # connection went to a background release, which frees it when done.
        return await run_isolated(
            self._loop, self._run(method, query, slot), on_done=slot.release_unless_kept
        )

    def terminate(self) -> None:
        """Close every connection now, without waiting on any server."""
        self._pool.terminate()

    async def _run(self, method: str, query: str, slot: BulkheadSlot) -> Any:
        # asyncio-flavoured: runs on the trio-asyncio loop, in one crossing.
        pool = self._pool
        conn = await pool.acquire()
        try:
            result = await getattr(conn, method)(query)
        except BaseException:
            slot.keep()
            self._release_in_background(conn, slot)
            raise
        # After a clean answer the release waits on nothing (the reset is a no-op): the rows
        # go back at once, and the release finishes in the background (within this loop
        # trip, in practice), holding the slot until the connection is back in the pool.
        # No timeout: asyncpg would arm (and cancel) an asyncio timer for every release.
        slot.keep()
        release = asyncio.ensure_future(pool.release(conn, timeout=None))
        self._finishing.add(release)
        release.add_done_callback(self._finished)
        release.add_done_callback(slot.release)
        return result

    def _release_in_background(self, conn: Any, slot: BulkheadSlot) -> None:
        task = asyncio.ensure_future(self._pool.release(conn, timeout=RELEASE_TIMEOUT_S))
        self._track_release(task, slot)

    def _track_release(self, task: asyncio.Future[Any], slot: BulkheadSlot) -> None:
        self._releasing.add(task)
        task.add_done_callback(self._released)
        task.add_done_callback(slot.release)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._finishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The rows were good; asyncpg has terminated the connection.
            logger.debug("connection terminated on release: %r", task.exception())

    def _released(self, task: asyncio.Future[Any]) -> None:
        self._releasing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # asyncpg has terminated the connection; a new one is opened when needed.
            logger.debug("connection terminated on release: %r", task.exception())


@asynccontextmanager
async def open_pg_pool(
    dsn: str, loop: Any, *, max_size: int, connect_kwargs: dict[str, Any]
) -> AsyncIterator[PgPool]:
    """Open a pool of at most ``max_size`` connections (opened lazily); terminate it on exit."""
    asyncpg_pool = await create_asyncpg_pool(
        dsn,
        loop,
        min_size=0,
        max_size=max_size,
        reset=_no_reset,
        # No recycling after N queries: asyncpg closes such a connection gracefully (up to
        # RELEASE_TIMEOUT_S) inside the release, and a PostgreSQL session needs no recycling.
        max_queries=2**31 - 1,
        # 0: no idle-connection timer. asyncpg arms one (five minutes) on every release,
        # and trio-asyncio keeps even a cancelled timer until it would have fired.
        max_inactive_connection_lifetime=0,
        **connect_kwargs,
    )
    pool = PgPool(asyncpg_pool, loop, max_size)
    try:
        yield pool
    finally:
        pool.terminate()
