"""The accounts' ORM model: one registered user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AccountsBase", "User"]


class AccountsBase(DeclarativeBase):
    """Declarative base of the accounts capability (its own: capabilities share no models)."""


class User(AccountsBase):
    """A registered user; the table is created by ``schema.sql`` (``accounts_users``).

    Emails are unique case-insensitively: stored in :func:`~.emails.email_key`'s form, with
    a unique index on the column.
    ``session_version`` goes up whenever the user's sessions must stop working (deleted
    rights, a new password): a session remembers the version it was made with.
    """

    __tablename__ = "accounts_users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(Text)
    username: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
