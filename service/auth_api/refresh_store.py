"""Refresh records in PostgreSQL (the table ``auth_refresh_tokens`` of ``schema.sql``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..platform.database import Database
from .refresh_tokens import RefreshRecord

__all__ = ["PgRefreshStore"]

_COLUMNS = (
    "token_hash, user_id, family_id, extract(epoch FROM expires_at) AS expires_at, spent, revoked"
)


class PgRefreshStore:
    """A :class:`~service.auth_api.refresh_tokens.RefreshStore` on the application database.

    ``spend`` is one conditional ``UPDATE``: of two concurrent callers, exactly one sees
    its row change. Times are stored as ``timestamptz`` and handled as epoch seconds.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, record: RefreshRecord) -> None:
        await self._run(
            "INSERT INTO auth_refresh_tokens (token_hash, user_id, family_id, expires_at)"
            " VALUES (:token_hash, :user_id, :family_id, to_timestamp(:expires_at))",
            token_hash=record.token_hash,
            user_id=record.user_id,
            family_id=record.family_id,
            expires_at=record.expires_at,
        )

    async def get(self, token_hash: str) -> RefreshRecord | None:
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM auth_refresh_tokens WHERE token_hash = :h", h=token_hash
        )
        if not rows:
            return None
        row = rows[0]
        return RefreshRecord(
            row["token_hash"],
            int(row["user_id"]),
            row["family_id"],
            float(row["expires_at"]),
            bool(row["spent"]),
            bool(row["revoked"]),
        )

    async def spend(self, token_hash: str) -> bool:
        rows = await self._rows(
            "UPDATE auth_refresh_tokens SET spent = true"
            " WHERE token_hash = :h AND NOT spent RETURNING token_hash",
            h=token_hash,
        )
        return bool(rows)

    async def revoke_family(self, family_id: str) -> None:
        await self._run(
            "UPDATE auth_refresh_tokens SET revoked = true WHERE family_id = :f", f=family_id
        )

    async def purge_expired(self, now: float) -> int:
        rows = await self._rows(
            "DELETE FROM auth_refresh_tokens WHERE expires_at <= to_timestamp(:now)"
            " RETURNING token_hash",
            now=now,
        )
        return len(rows)

    async def _run(self, sql: str, **params: Any) -> None:
        await self._rows(sql, **params)

    async def _rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return await self._database.run(_execute(self._database.engine, sql, params))


async def _execute(engine: AsyncEngine, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with engine.begin() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row) for row in result.mappings()] if result.returns_rows else []
