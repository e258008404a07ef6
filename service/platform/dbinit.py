"""Creating and seeding the tables: ``schema.sql`` and ``seed.sql`` applied with triopg."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable

import trio
import trio_asyncio
import triopg

__all__ = ["apply_sql_files", "default_sql_files", "initdb"]


def default_sql_files() -> tuple[Traversable, Traversable]:
    """The shipped ``schema.sql`` and ``seed.sql``: package data of this package (in a
    checkout, links to the top-level files; in a wheel, their copies)."""
    sql = files("service.platform").joinpath("sql")
    return sql.joinpath("schema.sql"), sql.joinpath("seed.sql")


async def apply_sql_files(dsn: str, sql_files: Sequence[Traversable]) -> None:
    """Run each SQL file, in order, on ``dsn`` (each file may hold many statements)."""
    scripts = [path.read_text(encoding="utf-8") for path in sql_files]
    async with trio_asyncio.open_loop(), triopg.connect(dsn) as conn:
        for script in scripts:
            await conn.execute(script)


def initdb(dsn: str, sql_files: Sequence[Traversable] | None = None) -> None:
    """Apply the schema and the seed to ``dsn`` (idempotent)."""
    trio.run(apply_sql_files, dsn, list(sql_files or default_sql_files()))
