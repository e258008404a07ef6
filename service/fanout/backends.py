"""Opening and closing everything the sources need, once per worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
from sqlalchemy.ext.asyncio import AsyncEngine

from ..platform.aio import open_worker_loop
from ..platform.bulkhead import Bulkhead
from ..platform.pg_pool import PgPool, open_pg_pool
from ..platform.pg_settings import connect_kwargs
from ..platform.settings import Settings, SourceKind, SourceSettings
from .http_source import HttpJsonSource, open_http_client
from .orm_source import OrmTableSource, create_orm_engine, track_connections
from .readiness import check_sources
from .source import Source
from .sql_source import SqlTableSource

__all__ = ["Backends", "open_backends"]

logger = logging.getLogger("service.fanout.backends")

#: A bound on disposing the ORM engines (their connections are already terminated).
_DISPOSE_TIMEOUT_S = 1.0


@dataclass
class Backends:
    """The live sources of one worker, and what they run on."""

    loop: Any
    http_clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    pools: dict[str, PgPool] = field(default_factory=dict)
    engines: dict[str, AsyncEngine] = field(default_factory=dict)
    terminators: list[Callable[[], int]] = field(default_factory=list)


@asynccontextmanager
async def open_backends(settings: Settings, *, loop: Any | None = None) -> AsyncIterator[Backends]:
    """Open a pool, engine or HTTP client per source, and the sources, on ``loop``: the
    worker's (the app's, platform/aio.py), or one of their own if none is given (tests).

    A source that is down at start-up is logged, not fatal: the service still
    starts and serves the others; a pool connects when its server is back.
    """
    async with AsyncExitStack() as stack:
        if loop is None:
            loop = await stack.enter_async_context(open_worker_loop())
        backends = Backends(loop=loop)
        stack.push_async_callback(_close_engines, backends)
        for config in settings.sources:
            backends.sources.append(await _open_source(backends, settings, config, stack))
        # Only the databases: opening their pools now spares the first request. An HTTP
        # source may be this very service (the demo), which does not answer yet.
        await _prewarm([s for s in backends.sources if not isinstance(s, HttpJsonSource)], settings)
        yield backends


async def _open_source(
    backends: Backends, settings: Settings, config: SourceSettings, stack: AsyncExitStack
) -> Source:
    """The source registry: build the :class:`Source` of one configured kind."""
    if config.kind is SourceKind.HTTP:
        assert config.url is not None
        # A client (and so a connection pool) per source, as each table source has its own
        # pool: requests stuck on a hung URL must not take the connections a healthy one needs.
        client = await stack.enter_async_context(
            open_http_client(max_connections=settings.http_max_connections)
        )
        backends.http_clients[config.name] = client
        return HttpJsonSource(
            config.name,
            config.url,
            client,
            max_body_bytes=settings.max_body_bytes_for(config),
            follow_redirects=config.follow_redirects,
            bulkhead=Bulkhead(settings.http_max_connections),
        )
    if config.dsn is None:
        raise ValueError(f"source {config.name} has no database URL")
    assert config.table is not None
    kwargs = connect_kwargs(
        statement_timeout_ms=settings.statement_timeout_ms_for(config),
        connection_check_interval_ms=settings.connection_check_interval_ms,
    )
    if config.kind is SourceKind.ORM:
        engine = await backends.loop.run_aio_coroutine(
            _create_engine(config.dsn, settings.pool_max_size, kwargs)
        )
        backends.engines[config.name] = engine
        backends.terminators.append(track_connections(engine))
        return OrmTableSource(
            config.name, config.table, engine, backends.loop, Bulkhead(settings.pool_max_size)
        )
    pool = await stack.enter_async_context(
        open_pg_pool(
            config.dsn, backends.loop, max_size=settings.pool_max_size, connect_kwargs=kwargs
        )
    )
    backends.pools[config.name] = pool
    return SqlTableSource(config.name, config.table, pool)


async def _create_engine(dsn: str, max_size: int, kwargs: dict[str, Any]) -> AsyncEngine:
    return create_orm_engine(dsn, max_size=max_size, connect_kwargs=kwargs)


async def _close_engines(backends: Backends) -> None:
    """Close the ORM engines' connections without waiting on any server (the pools of the
    raw-SQL sources are terminated as their contexts exit)."""
    for terminate_all in backends.terminators:
        terminate_all()
    # Nothing is left open, so dispose() has no network to wait for; bounded all the same.
    with trio.move_on_after(_DISPOSE_TIMEOUT_S) as scope:
        for engine in backends.engines.values():
            await backends.loop.run_aio_coroutine(engine.dispose())
    if scope.cancelled_caught:
        logger.warning("closing the ORM engines took over %.1f s", _DISPOSE_TIMEOUT_S)


async def _prewarm(sources: Sequence[Source], settings: Settings) -> None:
    """Check each source once, concurrently, within the source timeout (check_sources logs
    what fails)."""
    timeouts = settings.source_timeouts()
    for report in await check_sources(sources, settings.source_timeout_s, timeouts=timeouts):
        if not report.failed:
            logger.info("source %s is ready (%.1f ms)", report.source, report.elapsed_ms)
