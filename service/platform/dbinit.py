"""Creating and seeding the tables: ``schema.sql`` and ``seed.sql`` applied with triopg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import trio
import trio_asyncio
import triopg

__all__ = ["apply_sql_files", "default_sql_files", "initdb"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_sql_files() -> tuple[Path, Path]:
    """``schema.sql`` and ``seed.sql`` of the checkout (or of the current directory)."""
    for root in (_REPO_ROOT, Path.cwd()):
        schema, seed = root / "schema.sql", root / "seed.sql"
        if schema.is_file() and seed.is_file():
            return schema, seed
    raise FileNotFoundError(
        "schema.sql and seed.sql not found next to the service package nor in the current directory"
    )


async def apply_sql_files(dsn: str, files: Sequence[Path]) -> None:
    """Run each SQL file, in order, on ``dsn`` (each file may hold many statements)."""
    scripts = [path.read_text(encoding="utf-8") for path in files]
    async with trio_asyncio.open_loop(), triopg.connect(dsn) as conn:
        for script in scripts:
            await conn.execute(script)


def initdb(dsn: str, files: Sequence[Path] | None = None) -> None:
    """Apply the schema and the seed to ``dsn`` (idempotent)."""
    trio.run(apply_sql_files, dsn, list(files or default_sql_files()))
