"""A small trio-side pool of triopg connections whose release never waits on the network."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg
import trio
import triopg

__all__ = ["Connector", "TriopgPool", "triopg_connector"]

#: Opens one connection (a triopg connection proxy, or a fake in tests).
Connector = Callable[[], Awaitable[Any]]

logger = logging.getLogger("service.pg_pool")


class TriopgPool:
    """At most ``max_size`` triopg connections to one server, opened lazily, reused LIFO.

    Why not triopg's own pool: it releases a connection inside an unbounded shielded
    cancel scope, and asyncpg's release waits for the server to acknowledge a cancel
    and runs a reset query. On a blackholed socket or a lost cancel request that
    holds the request for ever. Here a connection goes back to the pool only after a
    clean answer (or a server-side error, which leaves the protocol in a clean
    state); after a cancel or a transport error it is terminated at once, which
    needs no network round trip. The service keeps no session state on its
    connections, so no reset query is needed either.
    """

    def __init__(self, connect: Connector, *, max_size: int) -> None:
        self._connect = connect
        self._slots = trio.Semaphore(max_size)
        self._idle: list[Any] = []
        self._closed = False
        self.max_size = max_size

    @property
    def idle_count(self) -> int:
        """Connections open and waiting in the pool."""
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Connections lent out right now."""
        return self.max_size - self._slots.value

    def connection(self) -> _Lease:
        """Lend a triopg connection (waiting for a free slot if all are lent): ``async with``.

        Must run with the trio-asyncio loop current (see :func:`service.aio.use_loop`).
        """
        return _Lease(self)

    async def prewarm(self) -> None:
        """Open one connection now, so the first request does not pay for it."""
        async with self.connection():
            pass

    def close(self) -> None:
        """Terminate every idle connection; lent ones are terminated when given back."""
        self._closed = True
        while self._idle:
            _terminate(self._idle.pop())

    def _take_idle(self) -> Any:
        """The most recently used idle connection that is still open, or None.

        A connection the server closed while it sat idle (restart, failover,
        ``pg_terminate_backend``) is noticed by its transport; it is dropped here
        rather than lent out to fail a request.
        """
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            _terminate(conn)
        return None

    def _give_back(self, conn: Any) -> None:
        if self._closed or conn.is_closed():
            _terminate(conn)
        else:
            self._idle.append(conn)


class _Lease:
    """One loan of a pooled connection (a class, not a generator: it is on the hot path)."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: TriopgPool) -> None:
        self._pool = pool
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        pool = self._pool
        if pool._closed:
            raise RuntimeError("pool is closed")
        await pool._slots.acquire()
        try:
            self._conn = pool._take_idle() or await pool._connect()
        except BaseException:
            pool._slots.release()
            raise
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A clean answer, or an error the server reported (the protocol is then in a clean
        # state): the connection goes back. A cancel or a transport error: it is terminated.
        try:
            if exc is None or isinstance(exc, asyncpg.PostgresError):
                self._pool._give_back(self._conn)
            else:
                _terminate(self._conn)
        finally:
            self._conn = None
            self._pool._slots.release()


def _terminate(conn: Any) -> None:
    try:
        conn.terminate()
    except Exception:  # terminate only closes a socket; never let it mask the real error
        logger.exception("terminating a PostgreSQL connection failed")


def triopg_connector(dsn: str, connect_kwargs: dict[str, Any]) -> Connector:
    """A :data:`Connector` opening triopg connections to ``dsn``."""

    async def connect() -> Any:
        conn = triopg.connect(dsn, **connect_kwargs)
        await conn.__aenter__()
        return conn

    return connect
