"""Refresh tokens: single use, rotated, with reuse detection. The rules, over a store seam.

A log-in starts a *family*; each refresh spends the presented token and adds its successor
to the family. Every change of a family (a rotation, a log-out, a reuse revocation) is one
serialisable step: the store locks the family, reads the presented record and the family's
``revoked`` flag, asks the rules here what to do (pure functions: no I/O, no clock of their
own) and applies all of it or nothing. So a log-out or a revocation racing a rotation can
never miss the token the rotation adds, and of parallel rotations exactly one spends.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import trio

__all__ = [
    "DEFAULT_REUSE_GRACE_S",
    "PASSWORD_CHANGED",
    "USER_GONE",
    "Change",
    "Decide",
    "InMemoryRefreshStore",
    "InvalidRefreshTokenError",
    "RefreshRecord",
    "RefreshStore",
    "RefreshTokenReusedError",
    "RefreshTokens",
    "hash_refresh_token",
    "log_out",
    "rotation",
]

#: A spent token presented again within this many seconds of its spending lost a race with
#: the request that spent it (a client that sent twice): 401, nothing revoked. Later: reuse.
DEFAULT_REUSE_GRACE_S = 5.0


class InvalidRefreshTokenError(Exception):
    """Unknown, malformed, expired or revoked: answer 401."""


class RefreshTokenReusedError(InvalidRefreshTokenError):
    """A spent token came back: someone holds a copy. Its whole family was revoked."""


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token: its hash only, its user, its log-in's family, its expiry,
    when it was spent (``None``: not yet), and ``revoked`` (records revoked one by one by
    earlier versions; a family's revocation is now its family's flag)."""

    token_hash: str
    user_id: int
    family_id: str
    expires_at: float
    spent_at: float | None = None
    revoked: bool = False

    @property
    def spent(self) -> bool:
        return self.spent_at is not None


@dataclass(frozen=True, slots=True)
class Change:
    """What one step does to a family, as the rules decided: refuse (``refused`` says why;
    nothing else happens but a revocation), or spend the presented record at ``spend_at``
    and add ``add``; and/or revoke the whole family."""

    user_id: int | None = None
    refused: str | None = None
    spend_at: float | None = None
    add: RefreshRecord | None = None
    revoke_family: bool = False


#: The rules of one step: given the presented record (``None``: unknown) and whether its
#: family is revoked, read under the family's lock, what to do.
Decide = Callable[[RefreshRecord | None, bool], Change]


def hash_refresh_token(token: str) -> str:
    """What is stored of a token: SHA-256 of it. A UUID4 has 122 random bits, so a fast
    hash suffices (no guessing to slow down); a leaked table holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _unusable(record: RefreshRecord | None, family_revoked: bool, now: float) -> str | None:
    if record is None or record.revoked or family_revoked:
        return "unknown or revoked refresh token"
    if now >= record.expires_at:
        return "the refresh token has expired"
    return None


def rotation(
    record: RefreshRecord | None,
    family_revoked: bool,
    *,
    now: float,
    grace_s: float,
    successor_hash: str,
    expires_at: float,
) -> Change:
    """A refresh: spend the record and add its successor (of the same user and family).

    A spent record presented again within ``grace_s`` of its spending is a parallel request
    that lost (refused, nothing revoked: the winner keeps its pair); later it is reuse
    (refused, and the family is revoked: the thief's copy and the owner's current token).
    """
    refused = _unusable(record, family_revoked, now)
    if refused is not None or record is None:
        return Change(refused=refused or "unknown or revoked refresh token")
    if record.spent_at is not None:
        if now - record.spent_at <= grace_s:
            return Change(record.user_id, refused="this refresh token was just used")
        return Change(
            record.user_id, refused="this refresh token was used already", revoke_family=True
        )
    successor = RefreshRecord(successor_hash, record.user_id, record.family_id, expires_at)
    return Change(record.user_id, spend_at=now, add=successor)


def log_out(record: RefreshRecord | None, family_revoked: bool, *, now: float) -> Change:
    """A log-out: revoke the record's family (also when the record was just spent by a
    refresh racing the log-out: its successor is in the family, and dies with it)."""
    refused = _unusable(record, family_revoked, now)
    if refused is not None or record is None:
        return Change(refused=refused or "unknown or revoked refresh token")
    return Change(record.user_id, revoke_family=True)


#: Why a log-in's first token was refused: its user was deleted meanwhile ...
USER_GONE = "the user no longer exists"
#: ... or their password changed after the log-in checked it (the change revoked every
#: token of the user; one issued after it, for the old password, must not live on).
PASSWORD_CHANGED = "the password changed during the log-in: log in again"


class RefreshStore(Protocol):
    """Where refresh records and their families live (PostgreSQL in the service; dicts in
    the tests). Each method is one atomic step."""

    async def add_family(
        self, record: RefreshRecord, password_hash: str | None = None
    ) -> str | None:
        """A new log-in: a family (not revoked) with ``record`` as its first token. ``None``
        once added; :data:`USER_GONE` if the user no longer exists, :data:`PASSWORD_CHANGED`
        if their password is no longer ``password_hash`` (the one the log-in checked; not
        compared when ``None``). Atomic with a password change: either the change comes
        after the step (and revokes the new family with the others), or the step sees the
        new password."""
        ...

    async def change(self, token_hash: str, decide: Decide) -> Change:
        """Under the lock of the family of ``token_hash``: read the record and the family's
        flag, ``decide``, and apply the result (spend, add, revoke) at once; the result.
        A record whose user was deleted meanwhile reads as unknown."""
        ...

    async def revoke_user(self, user_id: int) -> None:
        """Revoke every family of the user (a new password, a lost admin flag)."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete the records expired at ``now`` (and families left empty); how many records."""
        ...


class RefreshTokens:
    """Issues, rotates and revokes refresh tokens (lifetime ``lifetime_s``, 30 days).

    ``reuse_grace_s``: see :func:`rotation`. ``clock``: epoch seconds.
    """

    def __init__(
        self,
        store: RefreshStore,
        *,
        clock: Callable[[], float] = time.time,
        reuse_grace_s: float = DEFAULT_REUSE_GRACE_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._grace_s = reuse_grace_s

    async def issue(
        self, user_id: int, lifetime_s: float, *, password_hash: str | None = None
    ) -> str:
        """A new log-in's first token for ``user_id`` (a new family).

        ``password_hash``: the hash the log-in checked the password against. If the user's
        password changed since (the change revoked every token of the user, and this one
        would come after it), :class:`InvalidRefreshTokenError`, as when the user is gone.
        A log-in by password always passes it; ``None`` is for callers that checked none.
        """
        token = str(uuid.uuid4())
        record = RefreshRecord(
            hash_refresh_token(token), user_id, uuid.uuid4().hex, self._clock() + lifetime_s
        )
        refused = await self._store.add_family(record, password_hash)
        if refused is not None:
            raise InvalidRefreshTokenError(refused)
        return token

    async def rotate(self, token: str, lifetime_s: float) -> tuple[int, str]:
        """Spend ``token`` and return its user and a new token of the same family.

        A spent token used again past the grace window revokes the whole family and raises
        :class:`RefreshTokenReusedError`; within it, :class:`InvalidRefreshTokenError` and
        nothing is revoked (see :func:`rotation`).
        """
        token_hash = _checked_hash(token)
        successor = str(uuid.uuid4())
        now = self._clock()

        def decide(record: RefreshRecord | None, family_revoked: bool) -> Change:
            return rotation(
                record,
                family_revoked,
                now=now,
                grace_s=self._grace_s,
                successor_hash=hash_refresh_token(successor),
                expires_at=now + lifetime_s,
            )

        change = await self._store.change(token_hash, decide)
        _raise_if_refused(change)
        assert change.user_id is not None
        return change.user_id, successor

    async def revoke(self, token: str) -> int:
        """Log-out: the token's family can no longer be used. Its user."""
        token_hash = _checked_hash(token)
        now = self._clock()
        change = await self._store.change(
            token_hash, lambda record, revoked: log_out(record, revoked, now=now)
        )
        _raise_if_refused(change)
        assert change.user_id is not None
        return change.user_id

    async def revoke_user(self, user_id: int) -> None:
        """Every log-in of the user ends (their refresh tokens all stop working)."""
        await self._store.revoke_user(user_id)

    async def purge_expired(self) -> int:
        """Delete the records past their expiry; how many."""
        return await self._store.purge_expired(self._clock())


def _checked_hash(token: str) -> str:
    try:
        uuid.UUID(token, version=4)
    except (ValueError, AttributeError, TypeError):
        raise InvalidRefreshTokenError("not a refresh token") from None
    return hash_refresh_token(token)


def _raise_if_refused(change: Change) -> None:
    if change.refused is None:
        return
    if change.revoke_family:
        raise RefreshTokenReusedError(change.refused)
    raise InvalidRefreshTokenError(change.refused)


@dataclass(frozen=True, slots=True)
class Family:
    user_id: int
    revoked: bool = False


class InMemoryRefreshStore:
    """A :class:`RefreshStore` in dicts, for tests: the same steps, serialised by one lock.

    ``step_latency_s`` is how long a step holds the lock between its read and its write (a
    database's round trips), so concurrent steps really queue. :meth:`delete_user` is the
    database's cascade when a user is deleted; :meth:`change_password` is the accounts'
    new password (``password_hashes``: the users' current ones, where a test set them).
    """

    def __init__(self, *, step_latency_s: float = 0.0) -> None:
        self.records: dict[str, RefreshRecord] = {}
        self.families: dict[str, Family] = {}
        self.deleted_users: set[int] = set()
        self.password_hashes: dict[int, str] = {}
        self._latency_s = step_latency_s
        self._lock = trio.Lock()

    async def add_family(
        self, record: RefreshRecord, password_hash: str | None = None
    ) -> str | None:
        async with self._lock:
            if record.user_id in self.deleted_users:
                return USER_GONE
            current = self.password_hashes.get(record.user_id, password_hash)
            if password_hash is not None and current != password_hash:
                return PASSWORD_CHANGED
            self.families[record.family_id] = Family(record.user_id)
            self.records[record.token_hash] = record
            return None

    async def change(self, token_hash: str, decide: Decide) -> Change:
        async with self._lock:
            record = self.records.get(token_hash)
            family = self.families.get(record.family_id) if record else None
            if record is not None and family is None:  # a record of an earlier version
                family = self.families[record.family_id] = Family(record.user_id)
            change = decide(record, family.revoked if family else False)
            await trio.sleep(self._latency_s)
            if record is None or family is None:
                return change
            if change.spend_at is not None:
                self.records[token_hash] = replace(record, spent_at=change.spend_at)
            if change.add is not None:
                self.records[change.add.token_hash] = change.add
            if change.revoke_family:
                self.families[record.family_id] = replace(family, revoked=True)
            return change

    async def revoke_user(self, user_id: int) -> None:
        async with self._lock:
            self._revoke_user_nowait(user_id)

    def _revoke_user_nowait(self, user_id: int) -> None:
        for record in self.records.values():
            if record.user_id == user_id:
                self.families.setdefault(record.family_id, Family(user_id))
        for family_id, family in list(self.families.items()):
            if family.user_id == user_id:
                self.families[family_id] = replace(family, revoked=True)

    async def change_password(self, user_id: int, password_hash: str) -> None:
        """A new password and the revocation of the user's families, in one step."""
        async with self._lock:
            self.password_hashes[user_id] = password_hash
            self._revoke_user_nowait(user_id)

    async def delete_user(self, user_id: int) -> None:
        async with self._lock:
            self.deleted_users.add(user_id)
            self.records = {k: r for k, r in self.records.items() if r.user_id != user_id}
            self.families = {k: f for k, f in self.families.items() if f.user_id != user_id}

    async def purge_expired(self, now: float) -> int:
        async with self._lock:
            expired = [key for key, record in self.records.items() if now >= record.expires_at]
            for key in expired:
                del self.records[key]
            alive = {record.family_id for record in self.records.values()}
            self.families = {k: f for k, f in self.families.items() if k in alive}
            return len(expired)
