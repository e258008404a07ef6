"""Where tasks are kept: the :class:`TaskStore` protocol and the record it deals in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["NewTask", "Task", "TaskStore", "UnknownUserError"]


class UnknownUserError(LookupError):
    """The task's user does not exist (deleted since their token was issued)."""


@dataclass(frozen=True, slots=True)
class NewTask:
    user_id: int
    meta: str
    image_key: str
    image_type: str
    image_size: int
    image_sha256: str


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    user_id: int
    meta: str
    status: str
    created_at: datetime
    image_key: str
    image_type: str
    image_size: int
    image_sha256: str


class TaskStore(Protocol):
    """Tasks and their counters. Every method is one transaction."""

    async def create(self, new: NewTask) -> Task:
        """Insert the task and count it for its user and in the total, together;
        :class:`UnknownUserError` if the user is gone."""

    async def page(self, user_id: int, limit: int, before_id: int | None) -> list[Task]:
        """The user's tasks with ``id < before_id`` (all if None), newest first."""

    async def get(self, user_id: int, task_id: int) -> Task | None:
        """The task if it exists and is the user's."""

    async def delete(self, user_id: int, task_id: int) -> Task | None:
        """Delete the user's task; the deleted task, or None if there was none."""

    async def take(self, user_id: int) -> Task | None:
        """Mark one free task of the user taken and return it; None if none is free.
        Two concurrent calls never return the same task."""

    async def tasks_created(self, user_id: int) -> int:
        """How many tasks the user ever created (never decreases)."""

    async def total_created(self) -> int:
        """How many tasks all users ever created (never decreases)."""

    async def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that name a task's image."""

    async def known_users(self, user_ids: Iterable[int]) -> set[int]:
        """Those of ``user_ids`` that are users."""
