"""Token lifetimes, editable at run time: their bounds and their store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..platform.database import Database

__all__ = ["ACCESS", "REFRESH", "LifetimeError", "Lifetimes", "LifetimesStore"]

DAY_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Bound:
    """One lifetime: its key, default, bounds (in seconds) and the unit a person edits it in."""

    key: str
    label: str
    default_s: float
    min_s: float
    max_s: float
    unit: str
    unit_s: float


ACCESS = Bound("access_token_lifetime_s", "Access token lifetime", 30.0, 5.0, DAY_S, "seconds", 1.0)
REFRESH = Bound(
    "refresh_token_lifetime_s",
    "Refresh token lifetime",
    30 * DAY_S,
    3600.0,
    365 * DAY_S,
    "days",
    DAY_S,
)


class LifetimeError(ValueError):
    """A lifetime out of its bounds; the message gives them, in the unit shown."""


@dataclass(frozen=True, slots=True)
class Lifetimes:
    access_s: float = ACCESS.default_s
    refresh_s: float = REFRESH.default_s


def check(bound: Bound, seconds: float) -> float:
    """``seconds`` if within ``bound``; :class:`LifetimeError` otherwise."""
    if not bound.min_s <= seconds <= bound.max_s:
        low, high = bound.min_s / bound.unit_s, bound.max_s / bound.unit_s
        raise LifetimeError(f"{bound.label} must be from {low:g} to {high:g} {bound.unit}")
    return seconds


def parse(bound: Bound, raw: str) -> float:
    """A person's entry in ``bound.unit``, as seconds (checked)."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise LifetimeError(f"{bound.label}: enter a number of {bound.unit}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise LifetimeError(f"{bound.label}: enter a number of {bound.unit}")
    return check(bound, value * bound.unit_s)


class LifetimesStore:
    """The lifetimes in the ``auth_api_settings`` table (defaults where a row is missing)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def load(self) -> Lifetimes:
        rows = await self._database.run(_load(self._database.engine))
        return Lifetimes(
            rows.get(ACCESS.key, ACCESS.default_s), rows.get(REFRESH.key, REFRESH.default_s)
        )

    async def save(self, lifetimes: Lifetimes) -> None:
        check(ACCESS, lifetimes.access_s)
        check(REFRESH, lifetimes.refresh_s)
        await self._database.run(
            _save(
                self._database.engine,
                {ACCESS.key: lifetimes.access_s, REFRESH.key: lifetimes.refresh_s},
            )
        )


async def _load(engine: AsyncEngine) -> dict[str, float]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT key, value FROM auth_api_settings"))
        return {row.key: float(row.value) for row in result}


async def _save(engine: AsyncEngine, values: dict[str, float]) -> None:
    async with engine.begin() as conn:
        for key, value in values.items():
            await conn.execute(
                text(
                    "INSERT INTO auth_api_settings (key, value) VALUES (:key, :value)"
                    " ON CONFLICT (key) DO UPDATE SET value = :value, updated_at = now()"
                ),
                {"key": key, "value": value},
            )
