"""Images on disk: one file per task, in sharded folders, written atomically.

Layout: ``<root>/<user id mod 1000, 3 digits>/<user id>/<first 2 of key>/<key>``. The key
is made by the service (random hex plus the format's suffix), never taken from a request.
A user's files share one folder, so deleting a user removes exactly that folder; no folder
holds more than 1,000 user folders or 256 key folders, and random keys spread a user's
files evenly over the key folders.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import trio

__all__ = ["TEMP_PREFIX", "ImageFiles", "new_key"]

logger = logging.getLogger("service.tasks.image_files")

#: A file being written; renamed to its key once complete and on disk.
TEMP_PREFIX = ".tmp-"
#: Tries at removing a deleted user's folder while uploads race the deletion.
_REMOVE_ATTEMPTS = 5
_KEY = re.compile(r"[0-9a-f]{32}\.[a-z]{3,4}")


def new_key(suffix: str) -> str:
    """A fresh file name: 128 random bits and the format's suffix (``.png``)."""
    return secrets.token_hex(16) + suffix


def is_key(name: str) -> bool:
    return _KEY.fullmatch(name) is not None


class ImageFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def user_dir(self, user_id: int) -> Path:
        return self.root / f"{user_id % 1000:03d}" / str(user_id)

    def path(self, user_id: int, key: str) -> Path:
        if not is_key(key):
            raise ValueError(f"not an image key: {key!r}")
        return self.user_dir(user_id) / key[:2] / key

    async def write(self, user_id: int, key: str, data: bytes) -> Path:
        """Write ``data`` to a temporary file, fsync it, rename it into place and fsync
        the folder: after a crash the file is either whole or absent."""
        return await trio.to_thread.run_sync(self._write, user_id, key, data)

    async def remove(self, user_id: int, key: str) -> None:
        """Remove one image (already gone is fine)."""
        await trio.to_thread.run_sync(self._remove, self.path(user_id, key))

    async def remove_user(self, user_id: int) -> None:
        """Remove every image of the user (their whole folder)."""
        await trio.to_thread.run_sync(self._remove_tree, self.user_dir(user_id))

    def _write(self, user_id: int, key: str, data: bytes) -> Path:
        final = self.path(user_id, key)
        folder = final.parent
        _make_dirs(folder)
        temporary = folder / f"{TEMP_PREFIX}{key}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)
        return final

    @staticmethod
    def _remove(path: Path) -> None:
        path.unlink(missing_ok=True)

    @staticmethod
    def _remove_tree(path: Path) -> None:
        # An upload racing the deletion may add or remove a file under rmtree (ENOTEMPTY, or
        # FileNotFoundError part way, leaving the rest): try again until the folder is gone.
        failure: OSError | None = None
        for _ in range(_REMOVE_ATTEMPTS):
            try:
                shutil.rmtree(path)
                return
            except FileNotFoundError as exc:
                failure = exc
            except OSError as exc:
                failure = exc
            if not path.exists():
                return
        # The start-up sweep removes what is left.
        logger.error("cannot remove the images of a deleted user: %s", failure)

    def walk_user_dirs(self) -> Iterator[tuple[int, Path]]:
        """Every user folder: (user id, folder). Anything else is skipped."""
        if not self.root.is_dir():
            return
        for shard in sorted(os.scandir(self.root), key=lambda e: e.name):
            if not (shard.is_dir() and shard.name.isdigit()):
                continue
            for user in sorted(os.scandir(shard.path), key=lambda e: e.name):
                if user.is_dir() and user.name.isdigit():
                    yield int(user.name), Path(user.path)


def _make_dirs(folder: Path) -> None:
    """``mkdir -p`` (mode 0700), each new folder made durable in its parent: a stored row
    never names a file whose folder a crash could lose."""
    if folder.is_dir():
        return
    _make_dirs(folder.parent)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:  # made meanwhile by a concurrent write
        return
    _fsync_dir(folder.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
