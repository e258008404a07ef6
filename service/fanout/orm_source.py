"""A table read through the SQLAlchemy ORM (asyncpg under trio-asyncio)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, event, exc, select, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..platform.aio import run_isolated
from ..platform.bulkhead import Bulkhead, BulkheadSlot
from .models import data_row_model

__all__ = ["OrmTableSource", "create_orm_engine", "track_connections"]

logger = logging.getLogger("service.fanout.orm_source")

#: How long an interrupted connection may take to become reusable (the server acknowledging
#: the cancel of its query) before it is terminated instead. The same bound as the raw-SQL pool.
RELEASE_TIMEOUT_S = 1.0

#: Set in a pooled connection's ``info`` while the service interrupts its query on purpose.
_INTERRUPTED = "service.interrupted"


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
        hide_parameters=True,  # a failed statement's message (logged) without its values
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    event.listen(engine.sync_engine, "handle_error", _keep_interrupted_connection)
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


def _keep_interrupted_connection(context: ExceptionContext) -> None:
    """``handle_error`` hook: a query the service interrupted on purpose is not a lost connection.

    SQLAlchemy treats a ``CancelledError`` inside ``execute`` as a disconnect and
    invalidates the connection (a new one must then be opened: under load, one per
    timed-out request, which is the reconnect storm). asyncpg, though, keeps the
    connection usable: it sends the server a cancel request and waits for its
    acknowledgement before the next query. So a connection we interrupted is kept;
    :func:`_wind_down` returns it to the pool once that acknowledgement is in.
    """
    connection = context.connection
    if (
        isinstance(context.original_exception, asyncio.CancelledError)
        and connection is not None
        and connection.info.get(_INTERRUPTED)
    ):
        context.is_disconnect = False


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
    query itself (see docs/performance.md).

    Reads hold a slot of ``bulkhead`` (sized like the engine's pool) from before the
    checkout until the connection is back in the pool, so no read ever waits inside
    SQLAlchemy's pool.
    """

    def __init__(
        self, name: str, table: str, engine: AsyncEngine, loop: Any, bulkhead: Bulkhead
    ) -> None:
        self._name = name
        # Built once: SQLAlchemy memoizes a statement's cache key on the statement object, so
        # a statement rebuilt per read pays for its key (about a quarter of a read's CPU).
        self._select = select(data_row_model(table))
        self._engine = engine
        self._loop = loop
        self._bulkhead = bulkhead
        self._winding: set[asyncio.Future[Any]] = set()

    @property
    def name(self) -> str:
        return self._name

    @property
    def engine(self) -> AsyncEngine:
        """The source's own engine and connection pool."""
        return self._engine

    @property
    def winding_down(self) -> int:
        """Interrupted connections waiting (at most RELEASE_TIMEOUT_S) to be reusable."""
        return len(self._winding)

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        rows: list[dict[str, Any]] = await self._run(_select_rows)
        return rows

    async def check(self) -> None:
        await self._run(_select_one)

    async def _run(self, work: Any) -> Any:
        await self._bulkhead.acquire()
        slot = BulkheadSlot(self._bulkhead)
        # If the task is cancelled before it starts, its body never runs: the slot is freed
        # when the task is done, unless the body handed it to a wind-down.
        return await run_isolated(
            self._loop, self._interruptible(work, slot), on_done=slot.release_unless_kept
        )

    async def _interruptible(self, work: Any, slot: BulkheadSlot) -> Any:
        """Run ``work(conn, select_statement)`` on a pooled connection (asyncio side of the bridge).

        The query runs in a task of its own behind ``asyncio.shield``: when the
        request gives up (its deadline), the connection is handed to
        :func:`_wind_down` in the background, which interrupts the query and returns
        the connection to the pool when the server has acknowledged that, or
        terminates it when the acknowledgement does not come within
        ``RELEASE_TIMEOUT_S``. The request never waits for any of it.
        """
        conn = await self._engine.connect()
        # The pool's connection, while it is surely valid (see _wind_down).
        assert conn.sync_connection is not None  # set by connect()
        pooled = conn.sync_connection.connection
        query = asyncio.ensure_future(work(conn, self._select))
        try:
            result = await asyncio.shield(query)
        except asyncio.CancelledError:
            slot.keep()
            winding = asyncio.ensure_future(_wind_down(conn, query, slot, pooled))
            self._winding.add(winding)
            winding.add_done_callback(self._winding.discard)
            raise
        except BaseException:
            await conn.close()
            raise
        await conn.close()
        return result


async def _select_rows(conn: AsyncConnection, statement: Select[Any]) -> list[dict[str, Any]]:
    result = await conn.execute(statement)  # compiled once (SQLAlchemy's compiled cache)
    # The mapped columns in the model's order (DataRow: id, name). Unpacking a row costs
    # less than looking each column up by name.
    return [{"id": id_, "name": name} for id_, name in result]


async def _select_one(conn: AsyncConnection, _statement: Select[Any]) -> None:
    await conn.execute(text("SELECT 1"))


async def _wind_down(
    conn: AsyncConnection, query: asyncio.Future[Any], slot: BulkheadSlot, pooled: Any
) -> None:
    """Interrupt ``query`` and give its connection back: reused if the server acknowledges the
    cancel within ``RELEASE_TIMEOUT_S``, terminated if not (lost cancel, silent network).

    ``pooled`` is the pool's connection, taken when it was checked out: by now SQLAlchemy
    may have invalidated ``conn`` (a reset raced the cancel), and then ``conn`` no longer
    leads to it. Whatever happens, the slot is released.
    """
    try:
        driver = pooled.driver_connection
        pooled.info[_INTERRUPTED] = True
        # asyncpg sends the server a cancel request; SQLAlchemy keeps the connection
        # (_keep_interrupted_connection).
        query.cancel()
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                await asyncio.wait({query})
                if not query.cancelled():
                    query.exception()  # retrieved: an answer or error that raced the cancel
                # asyncpg runs the next query only after the server acknowledged the
                # cancel: this round trip is that wait, and proves the connection sound.
                await driver.execute("SELECT 1")
        except Exception as exc:  # TimeoutError included
            logger.debug("interrupted ORM connection not reusable, terminated: %r", exc)
            driver.terminate()
            if not query.done():
                query.cancel()
            _invalidate_now(conn)
        finally:
            pooled.info.pop(_INTERRUPTED, None)
        await conn.close()
    except Exception:
        logger.exception("returning an interrupted ORM connection failed")
    finally:
        slot.release()


def _invalidate_now(conn: AsyncConnection) -> None:
    """Mark the (terminated) connection invalid, so the pool opens a fresh one next time.

    Called synchronously, outside SQLAlchemy's greenlet, on purpose: there its
    terminate takes the forced path (close the socket) instead of the graceful one
    that awaits the server. Nothing here can wait.
    """
    sync_connection = conn.sync_connection
    if sync_connection is None or sync_connection.invalidated:
        return
    try:
        sync_connection.invalidate()
    except Exception:
        logger.exception("invalidating an interrupted ORM connection failed")
