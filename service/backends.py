"""Opening and closing everything the sources need, once per worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from .orm_source import OrmTableSource, create_orm_engine
from .pg_pool import TriopgPool, triopg_connector
from .pg_settings import connect_kwargs
from .readiness import check_sources
from .settings import Settings, SourceKind
from .source import Source
from .sql_source import SqlTableSource

__all__ = ["Backends", "open_backends"]

logger = logging.getLogger("service.backends")

#: How long shutdown waits for the ORM engines to close their connections.
_DISPOSE_TIMEOUT_S = 3.0


@dataclass
class Backends:
    """The live sources of one worker, with the trio-asyncio loop their drivers run on."""

    sources: Sequence[Source]
    loop: Any
    pools: dict[str, TriopgPool] = field(default_factory=dict)
    engines: dict[str, AsyncEngine] = field(default_factory=dict)


@asynccontextmanager
async def open_backends(settings: Settings) -> AsyncIterator[Backends]:
    """Open the trio-asyncio loop, one pool or engine per source, and the sources.

    A source whose server is down at start-up is logged, not fatal: the service
    still starts and serves the other sources; the pool connects when it can.
    """
    kwargs = connect_kwargs(
        statement_timeout_ms=settings.statement_timeout_ms,
        connection_check_interval_ms=settings.connection_check_interval_ms,
        command_timeout_s=settings.source_timeout_s,
    )
    async with trio_asyncio.open_loop() as loop:
        backends = Backends(sources=[], loop=loop)
        sources: list[Source] = []
        try:
            for config in settings.sources:
                if config.dsn is None:
                    raise ValueError(f"source {config.name} has no database URL")
                if config.kind is SourceKind.ORM:
                    engine = await loop.run_aio_coroutine(
                        _create_engine(config.dsn, settings.pool_max_size, kwargs)
                    )
                    backends.engines[config.name] = engine
                    sources.append(OrmTableSource(config.name, config.table, engine, loop))
                else:
                    pool = TriopgPool(
                        triopg_connector(config.dsn, kwargs), max_size=settings.pool_max_size
                    )
                    backends.pools[config.name] = pool
                    sources.append(SqlTableSource(config.name, config.table, pool, loop))
            backends.sources = sources
            await _prewarm(sources, settings.source_timeout_s)
            yield backends
        finally:
            for pool in backends.pools.values():
                pool.close()
            with trio.move_on_after(_DISPOSE_TIMEOUT_S) as scope:
                for engine in backends.engines.values():
                    await loop.run_aio_coroutine(engine.dispose())
            if scope.cancelled_caught:
                logger.warning("closing the ORM engines took over %.1f s", _DISPOSE_TIMEOUT_S)


async def _create_engine(dsn: str, max_size: int, kwargs: dict[str, Any]) -> AsyncEngine:
    return create_orm_engine(dsn, max_size=max_size, connect_kwargs=kwargs)


async def _prewarm(sources: Sequence[Source], timeout_s: float) -> None:
    """Check each source once, concurrently, within ``timeout_s``; log what fails."""
    for report in await check_sources(sources, timeout_s):
        if report.failed:
            logger.warning(
                "source %s is not ready at start-up: %s %s %s",
                report.source,
                report.outcome.value,
                report.error_type or "",
                report.error or "",
            )
        else:
            logger.info("source %s is ready (%.1f ms)", report.source, report.elapsed_ms)
