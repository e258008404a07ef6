"""The start-up sweep: files that a crash left without a row are removed.

A file can outlive its row (the process died between deleting a row and its file) or never
get one (it died between writing the file and inserting the row). Only files older than
``grace_s`` are considered: a younger one may belong to a creation still in flight on
another worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .image_files import TEMP_PREFIX, ImageFiles, is_key
from .store import TaskStore

__all__ = ["SweepReport", "sweep_orphans"]

logger = logging.getLogger("service.tasks.sweep")

#: A file younger than this is left alone (a creation takes well under a second).
GRACE_S = 600.0
_BATCH = 500


@dataclass(slots=True)
class SweepReport:
    files_removed: int = 0
    users_removed: int = 0


async def sweep_orphans(
    store: TaskStore,
    files: ImageFiles,
    *,
    grace_s: float = GRACE_S,
    clock: Callable[[], float] = time.time,
) -> SweepReport:
    """Remove the folders of users that no longer exist, and files whose key no task has
    (temporary files included), if older than ``grace_s``."""
    report = SweepReport()
    cutoff = clock() - grace_s
    user_dirs = await trio.to_thread.run_sync(lambda: list(files.walk_user_dirs()))
    for start in range(0, len(user_dirs), _BATCH):
        batch = user_dirs[start : start + _BATCH]
        known = await store.known_users(user_id for user_id, _ in batch)
        for user_id, folder in batch:
            if user_id not in known:
                if await trio.to_thread.run_sync(_newest_mtime, folder) < cutoff:
                    await files.remove_user(user_id)
                    report.users_removed += 1
                continue
            report.files_removed += await _sweep_user(store, folder, cutoff)
    if report.files_removed or report.users_removed:
        logger.warning(
            "start-up sweep: removed %d orphaned images and the folders of %d deleted users",
            report.files_removed,
            report.users_removed,
        )
    return report


async def _sweep_user(store: TaskStore, folder: Path, cutoff: float) -> int:
    entries = await trio.to_thread.run_sync(_old_files, folder, cutoff)
    removed = 0
    stray = [path for path in entries if not is_key(path.name)]
    keyed = [path for path in entries if is_key(path.name)]
    for start in range(0, len(keyed), _BATCH):
        batch = keyed[start : start + _BATCH]
        known = await store.known_keys(path.name for path in batch)
        stray.extend(path for path in batch if path.name not in known)
    for path in stray:
        if path.name.startswith(TEMP_PREFIX) or is_key(path.name):
            await trio.to_thread.run_sync(_unlink, path)
            removed += 1
    return removed


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _old_files(folder: Path, cutoff: float) -> list[Path]:
    found = []
    for shard in os.scandir(folder):
        if not shard.is_dir():
            continue
        for entry in os.scandir(shard.path):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                found.append(Path(entry.path))
    return found


def _newest_mtime(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for root, dirs, names in os.walk(folder):
        for name in (*dirs, *names):
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest
