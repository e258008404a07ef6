"""The task API's rules over a store and the image files: the row and the file never
disagree (a failed insert removes the file; a delete removes the row, then the file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import trio

from .image_files import ImageFiles, new_key
from .images import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_SCANS,
    CheckedImage,
    check_image,
    decode_base64,
)
from .store import NewTask, Task, TaskStore, UnknownUserError

__all__ = ["MAX_META_CHARS", "InvalidTaskError", "TaskService"]

#: A task's meta string, at most (characters).
MAX_META_CHARS = 10_000
#: Images decoded at once per worker: each may take ``MAX_IMAGE_PIXELS`` x 4 bytes while it
#: is decoded (160 MB at the default), so concurrent uploads queue for a slot instead of
#: adding up. Two: the machines this runs on have a few cores.
DECODING_AT_ONCE = 2


class InvalidTaskError(ValueError):
    """A field of a new task is wrong; the message says which and why."""


@dataclass(frozen=True, slots=True)
class TaskService:
    store: TaskStore
    files: ImageFiles
    max_image_bytes: int
    max_image_pixels: int
    max_image_frames: int = DEFAULT_MAX_FRAMES
    max_jpeg_scans: int = DEFAULT_MAX_SCANS
    decoding: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(DECODING_AT_ONCE)
    )

    async def create(self, user_id: int, image_base64: str, meta: str) -> Task:
        """Check the image (:class:`~service.tasks.images.ImageRejected`) and the meta
        (:class:`InvalidTaskError`), store the file, then the row; if the row cannot be
        stored the file is removed again.

        From the file's write to the row's commit nothing can be cancelled (a client that
        goes away mid-request cancels its handler): a cancellation arriving after the
        commit would otherwise remove the file of a stored task. The database's statement
        timeout bounds that stretch."""
        check_meta(meta)
        image = await trio.to_thread.run_sync(self._checked, image_base64, limiter=self.decoding)
        key = new_key(image.suffix)
        with trio.CancelScope(shield=True):
            await self._write(user_id, key, image.data)
            try:
                task = await self.store.create(
                    NewTask(
                        user_id=user_id,
                        meta=meta,
                        image_key=key,
                        image_type=image.mime_type,
                        image_size=len(image.data),
                        image_sha256=image.sha256,
                    )
                )
            except UnknownUserError:
                # Deleted since the token was issued, maybe while this file was written
                # (after their folder was removed): none of their files may stay.
                await self.files.remove_user(user_id)
                raise
            except BaseException:
                await self.files.remove(user_id, key)
                raise
        return task

    async def _write(self, user_id: int, key: str, data: bytes) -> None:
        """Write the file; :class:`UnknownUserError` if the user's folder went away under
        the write because the user is being deleted (their folder is removed after the row)."""
        try:
            await self.files.write(user_id, key, data)
        except FileNotFoundError:
            if user_id in await self.store.known_users([user_id]):
                raise
            await self.files.remove_user(user_id)
            raise UnknownUserError(user_id) from None

    async def take(self, user_id: int) -> Task | None:
        """The store's ``take``, not cancellable: once it commits, the task is returned."""
        with trio.CancelScope(shield=True):
            task = await self.store.take(user_id)
        return task  # noqa: RET504 (mypy: a CancelScope may swallow the return)

    async def delete(self, user_id: int, task_id: int) -> bool:
        """Delete the user's task: the row first (the task is gone for everyone at once),
        then its file, both whatever happens to the request. False if the user has no
        such task."""
        with trio.CancelScope(shield=True):
            task = await self.store.delete(user_id, task_id)
            if task is None:
                return False
            await self.files.remove(user_id, task.image_key)
        return True

    def image_path(self, task: Task) -> Path:
        return self.files.path(task.user_id, task.image_key)

    def _checked(self, image_base64: str) -> CheckedImage:
        data = decode_base64(image_base64, max_bytes=self.max_image_bytes)
        return check_image(
            data,
            max_pixels=self.max_image_pixels,
            max_frames=self.max_image_frames,
            max_scans=self.max_jpeg_scans,
        )


def check_meta(meta: str) -> None:
    if len(meta) > MAX_META_CHARS:
        raise InvalidTaskError(f"meta: at most {MAX_META_CHARS} characters")
    if "\x00" in meta:
        raise InvalidTaskError("meta: no NUL characters (PostgreSQL text cannot hold them)")
