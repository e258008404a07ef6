"""Giving rows stored before email keys existed their key: the half of the migration that
``schema.sql`` cannot do, since PostgreSQL cannot compute :func:`~.emails.email_key`.

``schema.sql`` adds the ``email_key`` column (empty on old rows) and its unique index; the
accounts fill it when they start, before they serve (every worker, and ``users load``), here.
Idempotent: only rows without a key are read, and a start with none costs one query.

Rows stored under the earlier rule (unique by lower case) may be caseless twins: ``ß@x``
and ``ss@x``, or two sigmas and a sigma with a final one. The one that has the key already,
else the oldest, keeps the address; every other twin is left without a key, so nobody can
log in as it, and a warning names it at every start, until an admin changes its address or
deletes it. Nothing is deleted.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from .emails import InvalidEmailError, email_key
from .models import User

__all__ = ["fill_email_keys"]

logger = logging.getLogger("service.accounts.email_keys")

#: At most this many ids are named in the warning.
_SHOWN = 20


async def fill_email_keys(session: AsyncSession) -> list[int]:
    """Give every row without an email key its key, in one transaction of ``session``
    (asyncio-flavoured); the ids of the rows left without one (a twin of an older row, or
    an address no key can be computed for), in order, after a warning naming them."""
    missing = select(User.id).where(User.email_key.is_(None)).limit(1)
    async with session.begin():
        if (await session.execute(missing)).first() is None:
            return []
        # One filling at a time, and no registration or change of users meanwhile.
        await session.execute(text("LOCK TABLE accounts_users IN SHARE ROW EXCLUSIVE MODE"))
        rows = (
            await session.execute(
                select(User.id, User.email).where(User.email_key.is_(None)).order_by(User.id)
            )
        ).all()
        wanted: dict[int, str] = {}
        left: list[int] = []
        for user_id, email in rows:
            try:
                wanted[user_id] = email_key(email)
            except InvalidEmailError:
                left.append(user_id)
        # One array parameter, however many rows (a query has at most 32,767 parameters).
        taken = set(
            (
                await session.execute(
                    text("SELECT email_key FROM accounts_users WHERE email_key = ANY(:keys)"),
                    {"keys": sorted(set(wanted.values()))},
                )
            ).scalars()
        )
        keys: list[dict[str, object]] = []
        for user_id, key in wanted.items():  # by id: the oldest twin gets the key
            if key in taken:
                left.append(user_id)
            else:
                taken.add(key)
                keys.append({"id": user_id, "email_key": key})
        if keys:  # an UPDATE by primary key, its rows sent at once
            await session.execute(update(User), keys)
    left.sort()
    if left:
        shown = ", ".join(map(str, left[:_SHOWN])) + (" ..." if len(left) > _SHOWN else "")
        logger.warning(
            "%d users have no email key, so nobody can log in as them: their address is an"
            " older user's in another case (emails are unique caselessly now), or not an"
            " address; change their email or delete them (users %s)",
            len(left),
            shown,
        )
    return left
