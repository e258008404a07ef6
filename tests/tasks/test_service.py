"""The task rules over the in-memory store and real files in a temporary folder: a row and
its file never disagree, and the start-up sweep removes what a crash left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import trio

from service.tasks.image_files import TEMP_PREFIX, ImageFiles, new_key
from service.tasks.images import ImageRejected
from service.tasks.memory_store import InMemoryTaskStore
from service.tasks.store import UnknownUserError
from service.tasks.sweep import sweep_orphans
from service.tasks.task_service import MAX_META_CHARS, InvalidTaskError, TaskService
from tests.support.task_images import b64, image_bytes

USER = 7


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def store() -> InMemoryTaskStore:
    return InMemoryTaskStore(users=[USER, 8])


@pytest.fixture
def tasks(store: InMemoryTaskStore, tmp_path: Path) -> TaskService:
    return TaskService(store, ImageFiles(tmp_path / "images"), 1024 * 1024, 1_000_000)


async def test_a_created_task_has_its_exact_bytes_in_a_sharded_file(
    tasks: TaskService, tmp_path: Path
) -> None:
    data = image_bytes("PNG")
    task = await tasks.create(USER, b64(data), "page 3")
    path = tasks.image_path(task)
    assert path.read_bytes() == data
    assert path.relative_to(tmp_path / "images").parts[:2] == ("007", "7")
    assert path.parent.name == task.image_key[:2]
    assert files_under(tmp_path / "images") == [path]
    assert (task.status, task.meta, task.image_type) == ("free", "page 3", "image/png")


async def test_file_names_are_made_by_the_service_not_the_client(tasks: TaskService) -> None:
    one = await tasks.create(USER, b64(image_bytes("PNG")), "../../etc/passwd")
    two = await tasks.create(USER, b64(image_bytes("PNG")), "../../etc/passwd")
    assert one.image_key != two.image_key
    assert one.image_key.endswith(".png")
    assert len(one.image_key) == 36


@pytest.mark.parametrize(
    ("image", "meta", "error"),
    [
        ("not base64", "", ImageRejected),
        (b64(b"plain text"), "", ImageRejected),
        (b64(image_bytes("PNG"))[:-8], "", ImageRejected),
        (b64(image_bytes("PNG")), "x" * (MAX_META_CHARS + 1), InvalidTaskError),
        (b64(image_bytes("PNG")), "nul\x00", InvalidTaskError),
    ],
    ids=["base64", "not-an-image", "truncated", "meta-too-long", "meta-nul"],
)
async def test_a_refused_task_leaves_no_file_and_no_row(
    tasks: TaskService,
    store: InMemoryTaskStore,
    tmp_path: Path,
    image: str,
    meta: str,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await tasks.create(USER, image, meta)
    assert files_under(tmp_path) == []
    assert store.tasks == {}
    assert store.total == 0


async def test_when_the_row_cannot_be_stored_the_file_is_removed(
    tasks: TaskService, store: InMemoryTaskStore, tmp_path: Path
) -> None:
    store.fail_next_create = ConnectionError("database lost")
    with pytest.raises(ConnectionError):
        await tasks.create(USER, b64(image_bytes("PNG")), "")
    assert files_under(tmp_path) == []
    with pytest.raises(UnknownUserError):
        await tasks.create(99, b64(image_bytes("PNG")), "")
    assert files_under(tmp_path) == []


async def test_a_cancelled_request_still_stores_the_task_whole(
    tasks: TaskService, store: InMemoryTaskStore, tmp_path: Path
) -> None:
    """A client that goes away cancels its handler; the task it sent is stored with its
    file, never half (a cancellation after the commit must not remove the file)."""
    original = store.create

    async def slow_create(new):  # type: ignore[no-untyped-def]
        await trio.sleep(0.3)
        return await original(new)

    store.create = slow_create  # type: ignore[method-assign]
    with trio.move_on_after(0.1) as scope:
        await tasks.create(USER, b64(image_bytes("PNG")), "")
        await trio.lowlevel.checkpoint()  # the cancellation lands here, after the create
    assert scope.cancelled_caught
    [task] = store.tasks.values()
    assert files_under(tmp_path) == [tasks.image_path(task)]


async def test_a_cancelled_delete_still_removes_row_and_file(
    tasks: TaskService, store: InMemoryTaskStore, tmp_path: Path
) -> None:
    task = await tasks.create(USER, b64(image_bytes("PNG")), "")
    original = store.delete

    async def slow_delete(user_id, task_id):  # type: ignore[no-untyped-def]
        await trio.sleep(0.3)
        return await original(user_id, task_id)

    store.delete = slow_delete  # type: ignore[method-assign]
    with trio.move_on_after(0.1):
        await tasks.delete(USER, task.id)
    assert store.tasks == {}
    assert files_under(tmp_path) == []


async def test_delete_removes_the_row_then_the_file(
    tasks: TaskService, store: InMemoryTaskStore, tmp_path: Path
) -> None:
    task = await tasks.create(USER, b64(image_bytes("GIF")), "")
    assert not await tasks.delete(8, task.id)  # not theirs
    assert tasks.image_path(task).exists()
    assert await tasks.delete(USER, task.id)
    assert store.tasks == {}
    assert files_under(tmp_path) == []
    assert not await tasks.delete(USER, task.id)


async def test_counters_never_go_down_when_tasks_are_deleted(
    tasks: TaskService, store: InMemoryTaskStore
) -> None:
    made = [await tasks.create(USER, b64(image_bytes("PNG")), "") for _ in range(3)]
    for task in made:
        await tasks.delete(USER, task.id)
    assert await store.tasks_created(USER) == 3
    assert await store.total_created() == 3


async def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    files = ImageFiles(tmp_path)
    key = new_key(".png")
    (files.path(USER, key).parent).mkdir(parents=True)
    files.path(USER, key).mkdir()  # the rename onto a folder fails
    with pytest.raises(IsADirectoryError):
        await files.write(USER, key, b"data")
    assert [p.name for p in files.path(USER, key).parent.iterdir()] == [key]


def make_old(path: Path) -> None:
    old = time.time() - 3600
    os.utime(path, (old, old))


async def test_the_sweep_removes_old_orphans_and_keeps_the_rest(
    tasks: TaskService, store: InMemoryTaskStore, tmp_path: Path
) -> None:
    files = tasks.files
    kept = await tasks.create(USER, b64(image_bytes("PNG")), "")
    make_old(tasks.image_path(kept))
    orphan = await files.write(USER, new_key(".png"), b"left by a crash")
    young_orphan = await files.write(USER, new_key(".png"), b"a creation in flight")
    temporary = orphan.parent / f"{TEMP_PREFIX}{new_key('.png')}"
    temporary.write_bytes(b"half")
    gone_user = await files.write(4242, new_key(".png"), b"a deleted user's")
    for path in (orphan, temporary, gone_user, gone_user.parent, gone_user.parent.parent):
        make_old(path)

    report = await sweep_orphans(store, files)

    assert (report.files_removed, report.users_removed) == (2, 1)
    assert files_under(tmp_path) == sorted([tasks.image_path(kept), young_orphan])
    assert not files.user_dir(4242).exists()


async def test_the_sweep_of_an_empty_or_missing_folder_does_nothing(tmp_path: Path) -> None:
    report = await sweep_orphans(InMemoryTaskStore(), ImageFiles(tmp_path / "none"))
    assert (report.files_removed, report.users_removed) == (0, 0)
