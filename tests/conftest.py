"""Shared fixtures: a real PostgreSQL for the integration tests (embedded, or DATABASE_URL)."""

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


@pytest.fixture
async def empty_db(pg_dsn: str) -> AsyncIterator[str]:
    """A database of its own on the same server: every table (schema.sql), no row."""
    name = f"test_{secrets.token_hex(4)}"
    async with trio_asyncio.open_loop() as loop:
        with use_loop(loop):
            async with triopg.connect(pg_dsn) as conn:
                await conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_url(pg_dsn).set(database=name).render_as_string(hide_password=False)
    schema, _seed = default_sql_files()
    await apply_sql_files(dsn, [schema])
    try:
        yield dsn
    finally:
        async with trio_asyncio.open_loop() as loop:
            with use_loop(loop):
                async with triopg.connect(pg_dsn) as conn:
                    await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
