"""One run per DST at a time, and the clean-up after a run that did not end cleanly.

``DST/images.lock`` is held with ``fcntl.flock`` for the whole run (the kernel drops the
lock when the process dies, however it dies), so a second run on the same DST is refused
instead of interleaving its outputs and journal rows. The file says ``running`` while a
run is on; a run that finds it so knows the last one crashed (or was aborted) and removes
the ``.partial`` files that run may have left in DST's shard directories."""

from __future__ import annotations

import fcntl
import os
import re
from types import TracebackType

from .paths import DirectoryError

__all__ = ["LOCK_NAME", "DstBusyError", "DstLock", "remove_partials"]

LOCK_NAME = "images.lock"
_RUNNING = b"running\n"
_SHARD = re.compile(r"[0-9a-f]{2}")


class DstBusyError(DirectoryError):
    """Another run holds this DST."""


class DstLock:
    """``with DstLock(dst) as lock:``; ``lock.unclean`` is True when the last run did not
    end cleanly; ``lock.ended_cleanly()`` marks this one as ended cleanly."""

    def __init__(self, dst: str) -> None:
        self.path = os.path.join(dst, LOCK_NAME)
        self.unclean = False
        self._fd = -1

    def __enter__(self) -> DstLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DstBusyError(
                f"another run is using this DST (it holds {LOCK_NAME}): wait for it to end, "
                "or use another DST"
            ) from None
        self._fd = fd
        self.unclean = os.pread(fd, len(_RUNNING), 0) == _RUNNING
        os.ftruncate(fd, 0)
        os.pwrite(fd, _RUNNING, 0)
        return self

    def ended_cleanly(self) -> None:
        os.ftruncate(self._fd, 0)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        os.close(self._fd)  # closing the file releases the lock
        self._fd = -1


def remove_partials(dst: str) -> int:
    """Remove the ``*.partial`` files (half-written outputs) in DST's shard directories
    (``ab/cd/``), nothing else; how many. Lists every shard directory: for after a crash."""
    removed = 0
    for first in _shards(dst):
        for second in _shards(os.path.join(dst, first)):
            with os.scandir(os.path.join(dst, first, second)) as entries:
                for entry in entries:
                    if entry.name.endswith(".partial") and entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
                        removed += 1
    return removed


def _shards(path: str) -> list[str]:
    with os.scandir(path) as entries:
        return sorted(
            entry.name
            for entry in entries
            if _SHARD.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
        )
