"""The task API's ORM model (tables created by ``schema.sql``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["TaskRow", "TasksBase"]


class TasksBase(DeclarativeBase):
    """Declarative base of the task API (its own: capabilities share no models)."""


class TaskRow(TasksBase):
    """One task (``tasks``). ``image_key`` is the file's name, made by the service."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # References accounts_users (ON DELETE CASCADE) in schema.sql; the task API does not
    # know the accounts' model, so the ORM is not told.
    user_id: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="free")
    image_key: Mapped[str] = mapped_column(Text, unique=True)
    image_type: Mapped[str] = mapped_column(Text)
    image_size: Mapped[int] = mapped_column(BigInteger)
    image_sha256: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
