"""A table read with raw SQL on triopg."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .aio import use_loop
from .pg_pool import TriopgPool

__all__ = ["SqlTableSource"]


class SqlTableSource:
    """A :class:`~service.source.Source` that runs ``SELECT id, name FROM <table>`` on triopg."""

    def __init__(self, name: str, table: str, pool: TriopgPool, loop: Any) -> None:
        self._name = name
        self._pool = pool
        self._loop = loop
        # The table name was checked to be a plain identifier; quoting keeps it one.
        self._query = f'SELECT id, name FROM "{table}"'

    @property
    def name(self) -> str:
        return self._name

    @property
    def pool(self) -> TriopgPool:
        """The source's own pool: one per source, so a slow source cannot starve another."""
        return self._pool

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        with use_loop(self._loop):
            async with self._pool.connection() as conn:
                rows: Sequence[Mapping[str, Any]] = await conn.fetch(self._query)
                return rows

    async def check(self) -> None:
        with use_loop(self._loop):
            async with self._pool.connection() as conn:
                await conn.fetchval("SELECT 1")
