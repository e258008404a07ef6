"""The task rules on the real PostgreSQL store: a cancelled request never leaves a row
without its file (or a file without its row), a refused insert leaves no file, and the
start-up sweep asks the database what is an orphan."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from service.platform.database import open_database
from service.tasks.image_files import ImageFiles
from service.tasks.pg_store import PgTaskStore
from service.tasks.store import UnknownUserError
from service.tasks.sweep import sweep_orphans
from service.tasks.task_service import TaskService
from tests.support.pg_admin import admin
from tests.support.task_images import b64, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
async def tasks(empty_db: str, tmp_path: Path) -> AsyncIterator[TaskService]:
    async with open_database(empty_db, user="tasks") as database:
        yield TaskService(PgTaskStore(database), ImageFiles(tmp_path / "images"), 10**6, 10**6)


async def new_user(dsn: str, email: str) -> int:
    async with admin(dsn) as conn:
        return int(
            await conn.fetchval(
                "INSERT INTO accounts_users (email, password_hash) VALUES ($1, 'x') RETURNING id",
                email,
            )
        )


def files_under(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def test_cancelled_creates_leave_rows_and_files_in_agreement(
    tasks: TaskService, empty_db: str
) -> None:
    user = await new_user(empty_db, "a@example.com")
    image = b64(image_bytes("PNG"))
    for step in range(40):  # cancel at every point from before the write to after the commit
        with trio.move_on_after(step * 0.0005):
            await tasks.create(user, image, str(step))
            await trio.lowlevel.checkpoint()
    async with admin(empty_db) as conn:
        keys = {row["image_key"] for row in await conn.fetch("SELECT image_key FROM tasks")}
        counted = await conn.fetchval("SELECT sum(tasks_created) FROM tasks_created_total")
    assert keys == files_under(tasks.files.root)
    assert counted == len(keys)


async def test_a_task_for_a_user_that_is_gone_is_refused_and_leaves_no_file(
    tasks: TaskService,
) -> None:
    with pytest.raises(UnknownUserError):
        await tasks.create(424242, b64(image_bytes("PNG")), "")
    assert files_under(tasks.files.root) == set()


async def test_the_sweep_keeps_stored_images_and_removes_orphans(
    tasks: TaskService, empty_db: str
) -> None:
    user = await new_user(empty_db, "a@example.com")
    kept = await tasks.create(user, b64(image_bytes("PNG")), "")
    orphan = await tasks.files.write(user, "0" * 32 + ".png", b"left by a crash")
    gone = await tasks.files.write(user + 1000, "1" * 32 + ".png", b"a deleted user's")
    old = time.time() - 3600
    for path in (tasks.image_path(kept), orphan, gone, gone.parent, gone.parent.parent):
        os.utime(path, (old, old))
    report = await sweep_orphans(tasks.store, tasks.files)
    assert (report.files_removed, report.users_removed) == (1, 1)
    assert files_under(tasks.files.root) == {kept.image_key}
