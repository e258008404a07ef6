"""The :class:`~service.tasks.store.TaskStore` on PostgreSQL (SQLAlchemy ORM on the
capability's own database handle)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..platform.database import Database
from .models import TaskRow
from .store import NewTask, Task, UnknownUserError

__all__ = ["TOTAL_SHARDS", "PgTaskStore"]

#: Rows of ``tasks_created_total`` (schema.sql creates exactly these).
TOTAL_SHARDS = 16

#: One statement: the subquery locks the oldest free task of the user that no other
#: transaction holds (SKIP LOCKED), the UPDATE marks it. A row another transaction took and
#: committed meanwhile fails the re-check of ``status = 'free'`` and the next one is locked
#: instead, so two callers never get the same task and none waits for another.
TAKE = text(
    """
    UPDATE tasks SET status = 'taken', taken_at = now()
    WHERE id = (
        SELECT id FROM tasks
        WHERE user_id = :user_id AND status = 'free'
        ORDER BY id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)

COUNT_FOR_USER = text(
    """
    INSERT INTO tasks_created_per_user (user_id, tasks_created) VALUES (:user_id, 1)
    ON CONFLICT (user_id)
    DO UPDATE SET tasks_created = tasks_created_per_user.tasks_created + 1
    """
)

COUNT_IN_TOTAL = text(
    "UPDATE tasks_created_total SET tasks_created = tasks_created + 1 WHERE shard = :shard"
)


class PgTaskStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, new: NewTask) -> Task:
        return await self._database.run(self._create(new))

    async def page(self, user_id: int, limit: int, before_id: int | None) -> list[Task]:
        return await self._database.run(self._page(user_id, limit, before_id))

    async def get(self, user_id: int, task_id: int) -> Task | None:
        return await self._database.run(self._get(user_id, task_id))

    async def delete(self, user_id: int, task_id: int) -> Task | None:
        return await self._database.run(self._delete(user_id, task_id))

    async def take(self, user_id: int) -> Task | None:
        return await self._database.run(self._take(user_id))

    async def tasks_created(self, user_id: int) -> int:
        return int(
            await self._scalar(
                "SELECT coalesce(max(tasks_created), 0) FROM tasks_created_per_user"
                " WHERE user_id = :user_id",
                user_id=user_id,
            )
        )

    async def total_created(self) -> int:
        return int(
            await self._scalar("SELECT coalesce(sum(tasks_created), 0) FROM tasks_created_total")
        )

    async def known_keys(self, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        if not wanted:
            return set()
        return await self._database.run(self._known_keys(wanted))

    async def known_users(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(user_ids)
        if not wanted:
            return set()
        return await self._database.run(self._known_users(wanted))

    # asyncio-flavoured: run on the database's loop.

    def _session(self) -> AsyncSession:
        return AsyncSession(self._database.engine, expire_on_commit=False)

    async def _create(self, new: NewTask) -> Task:
        try:
            async with self._session() as session, session.begin():
                row = TaskRow(
                    user_id=new.user_id,
                    meta=new.meta,
                    image_key=new.image_key,
                    image_type=new.image_type,
                    image_size=new.image_size,
                    image_sha256=new.image_sha256,
                )
                session.add(row)
                await session.flush()
                await session.refresh(row)
                await session.execute(COUNT_FOR_USER, {"user_id": new.user_id})
                await session.execute(COUNT_IN_TOTAL, {"shard": secrets.randbelow(TOTAL_SHARDS)})
                return _task(row)
        except IntegrityError as exc:
            if "tasks_user_id_fkey" in str(exc.orig):  # the user was deleted meanwhile
                raise UnknownUserError(new.user_id) from None
            raise

    async def _page(self, user_id: int, limit: int, before_id: int | None) -> list[Task]:
        query = select(TaskRow).where(TaskRow.user_id == user_id)
        if before_id is not None:
            query = query.where(TaskRow.id < before_id)
        async with self._session() as session:
            rows = await session.scalars(query.order_by(TaskRow.id.desc()).limit(limit))
            return [_task(row) for row in rows]

    async def _get(self, user_id: int, task_id: int) -> Task | None:
        async with self._session() as session:
            row = await session.get(TaskRow, task_id)
            return _task(row) if row is not None and row.user_id == user_id else None

    async def _delete(self, user_id: int, task_id: int) -> Task | None:
        async with self._session() as session, session.begin():
            row = (
                await session.scalars(
                    delete(TaskRow)
                    .where(TaskRow.id == task_id, TaskRow.user_id == user_id)
                    .returning(TaskRow)
                )
            ).one_or_none()
            return _task(row) if row is not None else None

    async def _take(self, user_id: int) -> Task | None:
        async with self._session() as session, session.begin():
            taken = (await session.execute(TAKE, {"user_id": user_id})).scalar_one_or_none()
            if taken is None:
                return None
            row = await session.get(TaskRow, taken, populate_existing=True)
            assert row is not None
            return _task(row)

    async def _known_keys(self, keys: list[str]) -> set[str]:
        async with self._session() as session:
            found = await session.scalars(
                select(TaskRow.image_key).where(TaskRow.image_key.in_(keys))
            )
            return set(found)

    async def _known_users(self, user_ids: list[int]) -> set[int]:
        async with self._session() as session:
            found = await session.execute(
                text("SELECT id FROM accounts_users WHERE id = ANY(:ids)"), {"ids": user_ids}
            )
            return {int(row[0]) for row in found}

    async def _scalar(self, sql: str, **params: Any) -> Any:
        async def run() -> Any:
            async with self._session() as session:
                return (await session.execute(text(sql), params)).scalar_one()

        return await self._database.run(run())


def _task(row: TaskRow) -> Task:
    return Task(
        id=row.id,
        user_id=row.user_id,
        meta=row.meta,
        status=row.status,
        created_at=row.created_at,
        image_key=row.image_key,
        image_type=row.image_type,
        image_size=row.image_size,
        image_sha256=row.image_sha256,
    )
