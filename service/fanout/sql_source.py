"""A table read with raw SQL on triopg."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..platform.pg_pool import PgPool

__all__ = ["SqlTableSource"]


class SqlTableSource:
    """A :class:`~service.source.Source` that runs ``SELECT id, name FROM <table>``."""

    def __init__(self, name: str, table: str, pool: PgPool) -> None:
        self._name = name
        self._pool = pool
        # The table name was checked to be a plain identifier; quoting keeps it one.
        self._query = f'SELECT id, name FROM "{table}"'

    @property
    def name(self) -> str:
        return self._name

    @property
    def pool(self) -> PgPool:
        """The source's own pool: one per source, so a slow source cannot starve another."""
        return self._pool

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        return await self._pool.fetch(self._query)

    async def check(self) -> None:
        await self._pool.fetchval("SELECT 1")
