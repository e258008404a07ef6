"""The users report, with raw SQL on triopg (the rest of accounts uses the ORM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..platform.database import Database

__all__ = ["UsersReport", "users_report"]

PER_DAY = """
SELECT day::date AS day, count(u.id) AS registered
FROM generate_series(current_date - 29, current_date, interval '1 day') AS day
LEFT JOIN accounts_users AS u ON u.created_at::date = day::date
GROUP BY day ORDER BY day
"""
PER_DOMAIN = """
SELECT lower(split_part(email, '@', 2)) AS domain, count(*) AS users
FROM accounts_users GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20
"""
TOTALS = """
SELECT count(*) AS users, count(*) FILTER (WHERE is_admin) AS admins FROM accounts_users
"""


@dataclass(frozen=True, slots=True)
class UsersReport:
    per_day: list[tuple[date, int]]
    per_domain: list[tuple[str, int]]
    users: int
    admins: int


async def users_report(database: Database) -> UsersReport:
    """Registrations per day over the last 30 days, users per email domain, the admins."""
    per_day = await database.pool.fetch(PER_DAY)
    per_domain = await database.pool.fetch(PER_DOMAIN)
    [totals] = await database.pool.fetch(TOTALS)
    return UsersReport(
        [(row["day"], row["registered"]) for row in per_day],
        [(row["domain"], row["users"]) for row in per_domain],
        totals["users"],
        totals["admins"],
    )
