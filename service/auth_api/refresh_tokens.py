"""Refresh tokens: single use, rotated, with reuse detection. The rules, over a store seam."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

__all__ = [
    "InMemoryRefreshStore",
    "InvalidRefreshTokenError",
    "RefreshRecord",
    "RefreshStore",
    "RefreshTokenReusedError",
    "RefreshTokens",
    "hash_refresh_token",
]


class InvalidRefreshTokenError(Exception):
    """Unknown, malformed, expired or revoked: answer 401."""


class RefreshTokenReusedError(InvalidRefreshTokenError):
    """A spent token came back: someone holds a copy. Its whole family was revoked."""


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token: its hash only, its user, its log-in's family, its expiry."""

    token_hash: str
    user_id: int
    family_id: str
    expires_at: float
    spent: bool = False
    revoked: bool = False


def hash_refresh_token(token: str) -> str:
    """What is stored of a token: SHA-256 of it. A UUID4 has 122 random bits, so a fast
    hash suffices (no guessing to slow down); a leaked table holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshStore(Protocol):
    """Where refresh records live (PostgreSQL in the service; a dict in the tests)."""

    async def add(self, record: RefreshRecord) -> None: ...

    async def get(self, token_hash: str) -> RefreshRecord | None: ...

    async def spend(self, token_hash: str) -> bool:
        """Mark the record spent if it was not: ``True`` for exactly one caller (atomic)."""
        ...

    async def revoke_family(self, family_id: str) -> None: ...

    async def purge_expired(self, now: float) -> int: ...


class RefreshTokens:
    """Issues, rotates and revokes refresh tokens (lifetime ``lifetime_s``, 30 days)."""

    def __init__(self, store: RefreshStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def issue(self, user_id: int, lifetime_s: float, family_id: str | None = None) -> str:
        """A new token for ``user_id``: of a new log-in's family, or of ``family_id``."""
        token = str(uuid.uuid4())
        await self._store.add(
            RefreshRecord(
                hash_refresh_token(token),
                user_id,
                family_id or uuid.uuid4().hex,
                self._clock() + lifetime_s,
            )
        )
        return token

    async def rotate(self, token: str, lifetime_s: float) -> tuple[int, str]:
        """Spend ``token`` and return its user and a new token of the same family.

        A spent token used again revokes the whole family (the thief's copy and the
        owner's current token alike) and raises :class:`RefreshTokenReusedError`. Of two
        concurrent rotations of one token, exactly one succeeds (the store's ``spend`` is
        atomic); the other is refused without revoking anything: a client that sent its
        request twice must not lose the pair the first one got.
        """
        record = await self._valid(token)
        if record.spent:
            await self._store.revoke_family(record.family_id)
            raise RefreshTokenReusedError("this refresh token was used already")
        if not await self._store.spend(record.token_hash):
            raise InvalidRefreshTokenError("this refresh token is being used by another request")
        return record.user_id, await self.issue(record.user_id, lifetime_s, record.family_id)

    async def revoke(self, token: str) -> int:
        """Log-out: the token's family can no longer be used. Its user."""
        record = await self._valid(token)
        await self._store.revoke_family(record.family_id)
        return record.user_id

    async def purge_expired(self) -> int:
        """Delete the records past their expiry; how many."""
        return await self._store.purge_expired(self._clock())

    async def _valid(self, token: str) -> RefreshRecord:
        try:
            uuid.UUID(token, version=4)
        except (ValueError, AttributeError, TypeError):
            raise InvalidRefreshTokenError("not a refresh token") from None
        record = await self._store.get(hash_refresh_token(token))
        if record is None or record.revoked:
            raise InvalidRefreshTokenError("unknown or revoked refresh token")
        if self._clock() >= record.expires_at:
            raise InvalidRefreshTokenError("the refresh token has expired")
        return record


class InMemoryRefreshStore:
    """A :class:`RefreshStore` in a dict, for tests."""

    def __init__(self) -> None:
        self.records: dict[str, RefreshRecord] = {}

    async def add(self, record: RefreshRecord) -> None:
        self.records[record.token_hash] = record

    async def get(self, token_hash: str) -> RefreshRecord | None:
        return self.records.get(token_hash)

    async def spend(self, token_hash: str) -> bool:
        record = self.records.get(token_hash)
        if record is None or record.spent:
            return False
        self.records[token_hash] = replace(record, spent=True)
        return True

    async def revoke_family(self, family_id: str) -> None:
        for key, record in list(self.records.items()):
            if record.family_id == family_id:
                self.records[key] = replace(record, revoked=True)

    async def purge_expired(self, now: float) -> int:
        expired = [key for key, record in self.records.items() if now >= record.expires_at]
        for key in expired:
            del self.records[key]
        return len(expired)
