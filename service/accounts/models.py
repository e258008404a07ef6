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

    Emails are unique case-insensitively: ``email`` holds the address as
    :func:`~.emails.stored_email` gives it (what is shown), ``email_key`` its caseless key
    (:func:`~.emails.email_key`), which has the unique index and which every lookup compares.
    The key is ``None`` only for a row stored before keys existed whose key another row has
    (see ``email_keys``): such a user cannot log in until their address is changed.
    ``session_version`` goes up whenever the user's sessions must stop working (deleted
    rights, a new password): a session remembers the version it was made with.
    """

    __tablename__ = "accounts_users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(Text)
    email_key: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
