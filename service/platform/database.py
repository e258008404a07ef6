"""The application database of a worker: an ORM engine and a raw-SQL pool on the worker's loop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .aio import open_worker_loop, run_isolated
from .pg_pool import PgPool, open_pg_pool
from .pg_settings import APPLICATION_NAME, connect_kwargs

__all__ = ["APP_POOL_SIZE", "Database", "open_database"]

logger = logging.getLogger("service.platform.database")

T = TypeVar("T")

#: The connections of a worker's application database, each of the ORM engine and the raw-SQL
#: pool (opened lazily): every capability shares them.
APP_POOL_SIZE = 10

#: A bound on closing the engine at shutdown.
_DISPOSE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Database:
    """The ORM engine (SQLAlchemy on asyncpg) and a raw-SQL pool (triopg) of one database."""

    loop: Any
    engine: AsyncEngine
    pool: PgPool

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an asyncio-flavoured coroutine (ORM work) on this database's loop."""
        return await run_isolated(self.loop, coro)


@asynccontextmanager
async def open_database(
    dsn: str,
    *,
    user: str,
    pool_size: int = 5,
    statement_timeout_ms: int = 10_000,
    loop: Any | None = None,
) -> AsyncIterator[Database]:
    """Open the engine and the pool (connections made lazily) on ``loop``; close both on exit.

    The app opens one per worker on its loop, for every capability (``create_app``); a
    command or a test opens its own, on a loop of its own unless it gives one.
    ``statement_timeout`` bounds every query on the server (a page never waits for ever).
    ``user`` names the opener in ``pg_stat_activity.application_name``
    (``switchyard:<user>``), apart from the fan-out's own connections.
    """
    kwargs = connect_kwargs(
        statement_timeout_ms=statement_timeout_ms,
        connection_check_interval_ms=0,
        application_name=f"{APPLICATION_NAME}:{user}",
    )
    async with AsyncExitStack() as stack:
        on: Any = loop if loop is not None else await stack.enter_async_context(open_worker_loop())
        pool = await stack.enter_async_context(
            open_pg_pool(dsn, on, max_size=pool_size, connect_kwargs=kwargs)
        )
        engine = await on.run_aio_coroutine(_create_engine(dsn, pool_size, kwargs))
        try:
            yield Database(on, engine, pool)
        finally:
            with trio.move_on_after(_DISPOSE_TIMEOUT_S, shield=True) as scope:
                await on.run_aio_coroutine(engine.dispose())
            if scope.cancelled_caught:
                logger.warning("closing the database engine took over %.1f s", _DISPOSE_TIMEOUT_S)


async def _create_engine(dsn: str, pool_size: int, kwargs: dict[str, Any]) -> AsyncEngine:
    url = make_url(dsn).set(drivername="postgresql+asyncpg")
    # hide_parameters: a failed statement's message (logged) never holds its values, which
    # may be a password hash.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args=kwargs, hide_parameters=True
    )
