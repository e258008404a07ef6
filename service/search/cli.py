"""``python -m service search-refresh [--once]``: the refresher outside the service (cron, or
a process of its own). Its notices reach every open page through Redis, as the workers' do."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import trio

from ..platform.database import open_database
from ..platform.embedded_redis import running_embedded_redis
from ..platform.response_cache import open_redis
from ..platform.settings import Settings
from .backoff import RedisBackoffs
from .client import StackExchangeClient
from .config import SearchConfig, SearchConfigError, load_config
from .notices import RedisNotices
from .refresher import MAX_BACKOFF_WAIT_S, Refresher, RefreshReport
from .store import PgRefreshLock, SearchStore

__all__ = ["add_commands"]

logger = logging.getLogger("service.search.cli")


def add_commands(commands: Any) -> None:
    """Add ``search-refresh`` to the CLI's commands."""
    parser = commands.add_parser(
        "search-refresh",
        help="run the stored Stack Exchange searches again (the refresher, standalone)",
        description=(
            "Run every stored search query against the API again and update the database;"
            " open pages get a notice. Uses DATABASE_URL (else the embedded database in"
            " EMBEDDED_PG_DIR), REDIS_URL (else the embedded one serve runs) and SEARCH_CONFIG."
        ),
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="refresh every query once, then exit (default: a round every refresh interval)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The command's exit code: 0 done, 1 some queries failed or were left for later
    (throttled, backoff) or another refresher held the lock, 2 a configuration error."""
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        config = load_config(settings.search_config)
    except SearchConfigError as exc:
        print(f"search-refresh: {exc}", file=sys.stderr)
        return 2
    if args.once:
        report = trio.run(refresh_once, settings, config)
        if report.locked_out:
            print("search-refresh: another refresher is running; nothing done")
            return 1
        print(
            f"search-refresh: {len(report.refreshed)} queries refreshed,"
            f" {len(report.failed)} failed, {len(report.deferred)} left for later"
            " (the API throttled us or asked for a backoff)"
        )
        return 1 if report.failed or report.deferred else 0
    try:
        trio.run(refresh_forever, settings, config)
    except KeyboardInterrupt:
        return 0
    return 0


async def refresh_once(settings: Settings, config: SearchConfig) -> RefreshReport:
    async with open_refresher(settings, config) as refresher:
        return await refresher.run_once(every_query=True)


async def refresh_forever(settings: Settings, config: SearchConfig) -> None:
    async with open_refresher(settings, config) as refresher:
        await refresher.serve()  # a round at once, then one every interval


@asynccontextmanager
async def open_refresher(settings: Settings, config: SearchConfig) -> AsyncIterator[Refresher]:
    async with AsyncExitStack() as stack:
        dsn = settings.database_url
        if dsn is None:
            from ..platform.embedded_pg import embedded_postgres

            dsn = stack.enter_context(embedded_postgres(settings.embedded_pg_dir))
        redis_url = settings.redis_url or running_embedded_redis(settings.embedded_redis_dir)
        redis = None
        if redis_url is None:
            logger.warning("no REDIS_URL and no embedded Redis running: no notices are sent")
        else:
            redis = await stack.enter_async_context(open_redis(redis_url))
        http = await stack.enter_async_context(httpx.AsyncClient())
        database = await stack.enter_async_context(open_database(dsn, user="search-refresh"))
        yield Refresher(
            source=StackExchangeClient(
                http,
                config.api_url,
                timeout_s=config.request_timeout_s,
                sort=config.api_sort,
                order=config.api_order,
                key=config.api_key,
                max_backoff_wait_s=MAX_BACKOFF_WAIT_S,
                # The workers' backoffs (in Redis) hold back this command's calls too.
                backoffs=RedisBackoffs(redis),
            ),
            store=SearchStore(database),
            lock=PgRefreshLock(database),
            notices=RedisNotices(redis),
            interval_s=config.refresh_interval_s,
            api_page_size=config.api_page_size,
            max_pages_per_query=config.refresh_max_pages_per_query,
        )
