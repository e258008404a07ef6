"""Refresh records in PostgreSQL (the tables ``auth_refresh_families`` and
``auth_refresh_tokens`` of ``schema.sql``)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..platform.database import Database
from .refresh_tokens import PASSWORD_CHANGED, USER_GONE, Change, Decide, RefreshRecord

__all__ = ["PgRefreshStore", "revoke_user_families"]

# A record spent by an earlier version has no spent_at: spent long ago (0: the epoch).
_COLUMNS = (
    "token_hash, user_id, family_id, extract(epoch FROM expires_at) AS expires_at,"
    " CASE WHEN spent THEN coalesce(extract(epoch FROM spent_at), 0) END AS spent_at, revoked"
)


class PgRefreshStore:
    """A :class:`~service.auth_api.refresh_tokens.RefreshStore` on the application database.

    ``change`` is one transaction that locks, in this order, the user's row (``FOR KEY
    SHARE``: what the foreign key of the new record takes anyway; a deletion of the user
    waits for the step, or the step for the deletion, and then finds no user) and the
    family's row (``FOR UPDATE``: rotations, log-outs and revocations of one family run one
    at a time), then reads the record afresh. The same order everywhere (a deletion and a
    password change lock the user's row first too) leaves no room for a deadlock.

    ``add_family`` (a log-in) locks the user's row ``FOR SHARE`` and reads its password
    hash: a change of the row (a new password, with its revocation of the user's families;
    a deletion) waits until the new family is committed and so revokes or deletes it too,
    or the log-in waits for the change and then reads the new password, and refuses. Times
    are stored as ``timestamptz`` and handled as epoch seconds.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add_family(
        self, record: RefreshRecord, password_hash: str | None = None
    ) -> str | None:
        return await self._database.run(_add_family(self._database.engine, record, password_hash))

    async def change(self, token_hash: str, decide: Decide) -> Change:
        return await self._database.run(_change(self._database.engine, token_hash, decide))

    async def revoke_user(self, user_id: int) -> None:
        async def run(engine: AsyncEngine) -> None:
            async with engine.begin() as conn:
                await revoke_user_families(conn, user_id)

        await self._database.run(run(self._database.engine))

    async def purge_expired(self, now: float) -> int:
        return await self._database.run(_purge(self._database.engine, now))


async def revoke_user_families(conn: AsyncConnection, user_id: int) -> None:
    """Revoke every refresh-token family of ``user_id``, in the caller's transaction (the
    accounts run it when a password changes or an admin is demoted: see
    ``accounts.directory.on_credentials_revoked``). Families of records from an earlier
    version, which have no row yet, get one, revoked. (A family with no record left is of
    no use: it is left as it is, for the purge.)"""
    await conn.execute(
        text(
            "INSERT INTO auth_refresh_families (family_id, user_id, revoked)"
            " SELECT DISTINCT family_id, user_id, true FROM auth_refresh_tokens"
            " WHERE user_id = :u ON CONFLICT (family_id) DO UPDATE SET revoked = true"
        ),
        {"u": user_id},
    )


async def _add_family(
    engine: AsyncEngine, record: RefreshRecord, password_hash: str | None
) -> str | None:
    try:
        async with engine.begin() as conn:
            # FOR SHARE, not KEY SHARE: every update of the row waits for this step, also one
            # that changes no key and locks nothing first (as a new password could).
            user = await conn.execute(
                text("SELECT password_hash FROM accounts_users WHERE id = :u FOR SHARE"),
                {"u": record.user_id},
            )
            row = user.first()
            if row is None:
                return USER_GONE
            if password_hash is not None and row.password_hash != password_hash:
                return PASSWORD_CHANGED
            await conn.execute(
                text("INSERT INTO auth_refresh_families (family_id, user_id) VALUES (:f, :u)"),
                {"f": record.family_id, "u": record.user_id},
            )
            await _insert(conn, record)
    except IntegrityError:  # the user was deleted meanwhile (the foreign key)
        return USER_GONE
    return None


async def _change(engine: AsyncEngine, token_hash: str, decide: Decide) -> Change:
    try:
        async with engine.begin() as conn:
            found = (
                await conn.execute(
                    text(
                        "SELECT family_id, user_id FROM auth_refresh_tokens WHERE token_hash = :h"
                    ),
                    {"h": token_hash},
                )
            ).first()
            if found is None:
                return decide(None, False)
            family_id, user_id = found.family_id, int(found.user_id)
            user = await conn.execute(
                text("SELECT 1 FROM accounts_users WHERE id = :u FOR KEY SHARE"), {"u": user_id}
            )
            if user.first() is None:  # deleted since: its records went with it
                return decide(None, False)
            family_revoked = await _lock_family(conn, family_id, user_id)
            record = await _record(conn, token_hash)  # afresh, now that the family is ours
            if family_revoked is None or record is None:
                return decide(None, False)
            change = decide(record, family_revoked)
            if change.spend_at is not None:
                await conn.execute(
                    text(
                        "UPDATE auth_refresh_tokens SET spent = true, spent_at = to_timestamp(:t)"
                        " WHERE token_hash = :h"
                    ),
                    {"t": change.spend_at, "h": token_hash},
                )
            if change.add is not None:
                await _insert(conn, change.add)
            if change.revoke_family:
                await conn.execute(
                    text("UPDATE auth_refresh_families SET revoked = true WHERE family_id = :f"),
                    {"f": family_id},
                )
            return change
    except IntegrityError:  # the user was deleted meanwhile (the foreign key): not theirs now
        return decide(None, False)


async def _lock_family(conn: AsyncConnection, family_id: str, user_id: int) -> bool | None:
    """Lock the family's row; whether it is revoked (``None``: no such family). A family of
    an earlier version's records has no row yet: it gets one."""
    lock = text("SELECT revoked FROM auth_refresh_families WHERE family_id = :f FOR UPDATE")
    row = (await conn.execute(lock, {"f": family_id})).first()
    if row is None:
        await conn.execute(
            text(
                "INSERT INTO auth_refresh_families (family_id, user_id) VALUES (:f, :u)"
                " ON CONFLICT (family_id) DO NOTHING"
            ),
            {"f": family_id, "u": user_id},
        )
        row = (await conn.execute(lock, {"f": family_id})).first()
    return None if row is None else bool(row.revoked)


async def _record(conn: AsyncConnection, token_hash: str) -> RefreshRecord | None:
    result = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM auth_refresh_tokens WHERE token_hash = :h"),
        {"h": token_hash},
    )
    row = result.mappings().first()
    if row is None:
        return None
    return RefreshRecord(
        row["token_hash"],
        int(row["user_id"]),
        row["family_id"],
        float(row["expires_at"]),
        None if row["spent_at"] is None else float(row["spent_at"]),
        bool(row["revoked"]),
    )


async def _insert(conn: AsyncConnection, record: RefreshRecord) -> None:
    await conn.execute(
        text(
            "INSERT INTO auth_refresh_tokens (token_hash, user_id, family_id, expires_at)"
            " VALUES (:token_hash, :user_id, :family_id, to_timestamp(:expires_at))"
        ),
        {
            "token_hash": record.token_hash,
            "user_id": record.user_id,
            "family_id": record.family_id,
            "expires_at": record.expires_at,
        },
    )


async def _purge(engine: AsyncEngine, now: float) -> int:
    # Two transactions: none holds a record's lock while waiting for a family's.
    async with engine.begin() as conn:
        purged = await conn.execute(
            text(
                "DELETE FROM auth_refresh_tokens WHERE expires_at <= to_timestamp(:now)"
                " RETURNING token_hash"
            ),
            {"now": now},
        )
        count = len(purged.all())
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM auth_refresh_families f WHERE NOT EXISTS"
                " (SELECT 1 FROM auth_refresh_tokens t WHERE t.family_id = f.family_id)"
            )
        )
    return count
