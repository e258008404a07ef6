"""A table read through the SQLAlchemy ORM (asyncpg under trio-asyncio)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import event, exc, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .aio import run_isolated
from .models import DataRow, data_row_model

__all__ = ["OrmTableSource", "create_orm_engine", "track_connections"]

logger = logging.getLogger("service.orm_source")

#: How long a cancelled ORM read may take to wind down after its connection is killed.
_CLEANUP_S = 0.02


def create_orm_engine(dsn: str, *, max_size: int, connect_kwargs: dict[str, Any]) -> AsyncEngine:
    """An asyncpg-backed engine for read-only ORM queries.

    AUTOCOMMIT and no reset on return: a read needs no BEGIN/ROLLBACK round trips,
    and the service leaves no session state behind. Must be called with the
    trio-asyncio loop running (the engine belongs to it).
    """
    url = make_url(dsn).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        url,
        pool_size=max_size,
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        connect_args=connect_kwargs,
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def track_connections(engine: AsyncEngine) -> Callable[[], int]:
    """Remember the engine's driver connections; the returned function terminates them all.

    Used at shutdown before ``dispose()``: SQLAlchemy's own close is graceful and
    waits on the server, which may be gone. Terminating needs no round trip, and
    ``dispose()`` then has nothing left to wait for. Returns how many it closed.
    """
    live: weakref.WeakSet[Any] = weakref.WeakSet()

    def remember(dbapi_connection: Any, _record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None:
            live.add(driver)

    def terminate_all() -> int:
        closed = 0
        for driver in list(live):
            if not driver.is_closed():
                driver.terminate()
                closed += 1
        return closed

    event.listen(engine.sync_engine, "connect", remember)
    return terminate_all


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a connection the server closed while idle is replaced, not lent.

    Costs no round trip: the transport already noticed the close.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("connection was closed while idle in the pool")


class OrmTableSource:
    """A :class:`~service.source.Source` that reads ``select(Model)`` of a declarative mapped class.

    The statement is executed on an ``AsyncConnection``, which returns the mapped
    columns as rows: the same SQL and the same values as through an ``AsyncSession``,
    without building an identity-mapped object per row, which cost more than the
    query itself (see the README's Performance section).
    """

    def __init__(self, name: str, table: str, engine: AsyncEngine, loop: Any) -> None:
        self._name = name
        self._model = data_row_model(table)
        self._engine = engine
        self._loop = loop

    @property
    def name(self) -> str:
        return self._name

    @property
    def engine(self) -> AsyncEngine:
        """The source's own engine and connection pool."""
        return self._engine

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        rows: list[dict[str, Any]] = await run_isolated(
            self._loop, _run_killable(self._engine, _select_rows, self._model)
        )
        return rows

    async def check(self) -> None:
        await run_isolated(self._loop, _run_killable(self._engine, _select_one, None))


async def _select_rows(conn: AsyncConnection, model: type[DataRow] | None) -> list[dict[str, Any]]:
    assert model is not None
    result = await conn.execute(select(model))  # cached: compiled once per model
    return [{"id": row.id, "name": row.name} for row in result]


async def _select_one(conn: AsyncConnection, _model: type[DataRow] | None) -> None:
    await conn.execute(text("SELECT 1"))


async def _run_killable(engine: AsyncEngine, work: Any, model: type[DataRow] | None) -> Any:
    """Run ``work(conn, model)`` on a pooled connection; on cancel, kill the connection first.

    When a query is cancelled, SQLAlchemy invalidates the connection with a
    *graceful* close that waits up to 2 s (shielded) for the server. trio-asyncio
    waits for the asyncio task to finish, so that would hold the request past its
    deadline. So the work runs in its own task behind ``asyncio.shield``; on cancel
    this terminates the socket (no network wait), after which SQLAlchemy's cleanup
    fails fast, and waits for it only a few milliseconds.
    """
    async with engine.connect() as conn:
        # Already checked out by connect(); reading it needs no await.
        driver_conn = (
            conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        )
        task = asyncio.ensure_future(work(conn, model))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if driver_conn is not None:
                driver_conn.terminate()
            await asyncio.wait({task}, timeout=_CLEANUP_S)
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the read was abandoned on purpose
            else:
                task.cancel()
            _invalidate_now(conn)
            raise


def _invalidate_now(conn: AsyncConnection) -> None:
    """Mark the (terminated) connection invalid, so the pool opens a fresh one next time.

    Called synchronously, outside SQLAlchemy's greenlet, on purpose: there its
    terminate takes the forced path (close the socket) instead of the graceful one
    that awaits the server. Nothing here can wait, and nothing here may replace the
    CancelledError being handled.
    """
    sync_connection = conn.sync_connection
    if sync_connection is None or sync_connection.invalidated:
        return
    try:
        sync_connection.invalidate()
    except Exception:
        logger.exception("invalidating a cancelled ORM connection failed")
