"""A table read through the SQLAlchemy ORM (asyncpg under trio-asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .models import DataRow, data_row_model

__all__ = ["OrmTableSource", "create_orm_engine"]

#: How long a cancelled ORM read may take to wind down after its connection is killed.
_CLEANUP_S = 0.02


def create_orm_engine(dsn: str, *, max_size: int, connect_kwargs: dict[str, Any]) -> AsyncEngine:
    """An asyncpg-backed engine for read-only ORM queries.

    AUTOCOMMIT and no reset on return: a read needs no BEGIN/ROLLBACK round trips,
    and the service leaves no session state behind. Must be called with the
    trio-asyncio loop running (the engine belongs to it).
    """
    url = make_url(dsn).set(drivername="postgresql+asyncpg")
    return create_async_engine(
        url,
        pool_size=max_size,
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        connect_args=connect_kwargs,
    )


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
        rows: list[dict[str, Any]] = await self._loop.run_aio_coroutine(
            _run_killable(self._engine, _select_rows, self._model)
        )
        return rows

    async def check(self) -> None:
        await self._loop.run_aio_coroutine(_run_killable(self._engine, _select_one, None))


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
            await _invalidate(conn)
            raise


async def _invalidate(conn: AsyncConnection) -> None:
    # The socket is already closed, so this returns without a network wait; it makes
    # the pool open a fresh connection instead of lending the dead one again.
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(conn.invalidate(), _CLEANUP_S)
