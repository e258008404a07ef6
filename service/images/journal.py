"""The journal: one SQLite file in DST with a row per finished image (its results, or why
it failed), so a rerun skips what is done. Each record is committed at once (WAL with
``synchronous=NORMAL``: a commit is an append to the WAL file, no fsync, some tens of
microseconds), so a crash redoes no finished image; a lookup is one indexed query per
batch of walked paths."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["JOURNAL_NAME", "Journal", "JournalError", "Record"]

JOURNAL_NAME = "journal.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    path        TEXT PRIMARY KEY,   -- relative to SRC
    status      TEXT NOT NULL,      -- 'ok' or 'failed'
    output      TEXT,               -- relative to DST
    width       INTEGER,
    height      INTEGER,
    magic       INTEGER,            -- the 64-bit hash, stored signed (printf('%016x', magic))
    remote      TEXT,               -- the remote service's answer; NULL when not configured
    error       TEXT,
    finished_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_failed ON images (path) WHERE status = 'failed';
CREATE TABLE IF NOT EXISTS options (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class JournalError(Exception):
    """The journal cannot be used for this run."""


@dataclass(frozen=True, slots=True)
class Record:
    """One finished image."""

    path: str
    status: str
    output: str | None = None
    width: int | None = None
    height: int | None = None
    magic: int | None = None
    remote: str | None = None
    error: str | None = None


def _signed(value: int | None) -> int | None:
    if value is None or value < 1 << 63:
        return value
    return value - (1 << 64)


class Journal:
    """The journal of one DST. Each record is committed at once by default; ``commit_every``
    records or ``commit_interval_s`` seconds group them (for measurements), and
    ``flush``/``close`` commit the rest; lookups on the same connection see uncommitted
    rows too.

    Durability: WAL mode with ``synchronous=NORMAL``: a committed record survives the
    process being killed (SIGKILL, a crash; not a power cut, whose last commits the OS may
    not have written yet). Single-threaded: use it from the one thread that opened it."""

    def __init__(self, path: str, *, commit_every: int = 1, commit_interval_s: float = 1.0) -> None:
        self.path = path
        self._commit_every = commit_every
        self._commit_interval_s = commit_interval_s
        try:
            self._db = sqlite3.connect(path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{path}: {exc}") from exc
        self._pending = 0
        self._last_commit = time.monotonic()

    def check_options(self, options: dict[str, str]) -> None:
        """Remember this run's options on the first run; refuse different ones later (the
        outputs of one DST must all be made the same way)."""
        stored = dict(self._db.execute("SELECT name, value FROM options").fetchall())
        if not stored:
            self._db.executemany("INSERT INTO options VALUES (?, ?)", sorted(options.items()))
            self._db.commit()
            return
        changed = {
            name: (stored.get(name), value)
            for name, value in options.items()
            if stored.get(name) != value
        }
        if changed:
            said = ", ".join(f"{name} was {old}, now {new}" for name, (old, new) in changed.items())
            raise JournalError(
                f"this DST was made with other options ({said}): rerun with the same ones, "
                "or use another DST"
            )

    def finished_among(self, paths: Sequence[str], *, retry_failed: bool = False) -> set[str]:
        """Which of ``paths`` are already in the journal (only the successful ones when
        ``retry_failed``)."""
        if not paths:
            return set()
        marks = ",".join("?" * len(paths))
        query = f"SELECT path FROM images WHERE path IN ({marks})"
        if retry_failed:
            query += " AND status = 'ok'"
        return {row[0] for row in self._db.execute(query, paths)}

    def record(self, record: Record) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.path,
                record.status,
                record.output,
                record.width,
                record.height,
                _signed(record.magic),
                record.remote,
                record.error,
                time.time(),
            ),
        )
        self._pending += 1
        if (
            self._pending >= self._commit_every
            or time.monotonic() - self._last_commit >= self._commit_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        """Commit what was recorded."""
        self._db.commit()
        self._pending = 0
        self._last_commit = time.monotonic()

    def counts(self) -> dict[str, int]:
        """Rows per status (a full scan: for summaries, not the hot path)."""
        rows = self._db.execute("SELECT status, count(*) FROM images GROUP BY status")
        return dict(rows)

    def get(self, path: str) -> Record | None:
        row = self._db.execute(
            "SELECT path, status, output, width, height, magic, remote, error"
            " FROM images WHERE path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        magic = row[5] if row[5] is None or row[5] >= 0 else row[5] + (1 << 64)
        return Record(row[0], row[1], row[2], row[3], row[4], magic, row[6], row[7])

    def close(self) -> None:
        self.flush()
        self._db.close()
