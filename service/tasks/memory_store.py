"""An in-memory :class:`~service.tasks.store.TaskStore`, for tests of the task logic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from .store import NewTask, Task, UnknownUserError

__all__ = ["InMemoryTaskStore"]


class InMemoryTaskStore:
    """Same rules as the PostgreSQL store, in one trio task's memory (no awaits inside a
    change, so every change is atomic). ``users`` are the ids that exist."""

    def __init__(self, users: Iterable[int] = ()) -> None:
        self.users: set[int] = set(users)
        self.tasks: dict[int, Task] = {}
        self.created: dict[int, int] = {}
        self.total = 0
        self._next_id = 1
        #: Set to make the next ``create`` fail (as a lost database would).
        self.fail_next_create: Exception | None = None

    async def create(self, new: NewTask) -> Task:
        if self.fail_next_create is not None:
            failure, self.fail_next_create = self.fail_next_create, None
            raise failure
        if new.user_id not in self.users:
            raise UnknownUserError(new.user_id)
        task = Task(
            id=self._next_id,
            user_id=new.user_id,
            meta=new.meta,
            status="free",
            created_at=datetime.now(UTC),
            image_key=new.image_key,
            image_type=new.image_type,
            image_size=new.image_size,
            image_sha256=new.image_sha256,
        )
        self._next_id += 1
        self.tasks[task.id] = task
        self.created[new.user_id] = self.created.get(new.user_id, 0) + 1
        self.total += 1
        return task

    async def page(self, user_id: int, limit: int, before_id: int | None) -> list[Task]:
        mine = [
            t
            for t in self.tasks.values()
            if t.user_id == user_id and (before_id is None or t.id < before_id)
        ]
        return sorted(mine, key=lambda t: t.id, reverse=True)[:limit]

    async def get(self, user_id: int, task_id: int) -> Task | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.user_id == user_id else None

    async def delete(self, user_id: int, task_id: int) -> Task | None:
        task = await self.get(user_id, task_id)
        if task is not None:
            del self.tasks[task_id]
        return task

    async def take(self, user_id: int) -> Task | None:
        free = [t for t in self.tasks.values() if t.user_id == user_id and t.status == "free"]
        if not free:
            return None
        task = replace(min(free, key=lambda t: t.id), status="taken")
        self.tasks[task.id] = task
        return task

    async def tasks_created(self, user_id: int) -> int:
        return self.created.get(user_id, 0) if user_id in self.users else 0

    async def total_created(self) -> int:
        return self.total

    async def known_keys(self, keys: Iterable[str]) -> set[str]:
        stored = {t.image_key for t in self.tasks.values()}
        return {key for key in keys if key in stored}

    async def known_users(self, user_ids: Iterable[int]) -> set[int]:
        return {user_id for user_id in user_ids if user_id in self.users}

    def delete_user(self, user_id: int) -> None:
        """What ``ON DELETE CASCADE`` does: the user, their tasks and their counter go."""
        self.users.discard(user_id)
        self.created.pop(user_id, None)
        self.tasks = {i: t for i, t in self.tasks.items() if t.user_id != user_id}
