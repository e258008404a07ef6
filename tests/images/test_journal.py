"""The journal: what is finished, batched commits, options that must not change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.images.journal import Journal, JournalError, Record


def test_finished_images_are_found_and_failed_ones_can_be_retried(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "j.sqlite3"))
    journal.record(Record("a.png", "ok", output="aa/bb/x.png", width=2, height=1, magic=1 << 63))
    journal.record(Record("b.png", "failed", error="corrupt"))
    assert journal.finished_among(["a.png", "b.png", "c.png"]) == {"a.png", "b.png"}
    assert journal.finished_among(["a.png", "b.png"], retry_failed=True) == {"a.png"}
    assert journal.finished_among([]) == set()
    kept = journal.get("a.png")
    assert kept is not None
    assert kept.magic == 1 << 63
    assert kept.output == "aa/bb/x.png"
    assert journal.counts() == {"ok": 1, "failed": 1}
    journal.close()


def _committed_rows(path: Path) -> int:
    with sqlite3.connect(path) as other:
        count: int = other.execute("SELECT count(*) FROM images").fetchone()[0]
    return count


def test_records_are_committed_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(str(path), commit_every=10, commit_interval_s=3600)
    for number in range(25):
        journal.record(Record(f"{number}.png", "ok"))
    assert _committed_rows(path) == 20  # two batches; five wait for the next commit
    journal.flush()
    assert _committed_rows(path) == 25
    journal.close()


def test_a_reopened_journal_remembers(tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite3")
    journal = Journal(path)
    journal.record(Record("a.png", "ok"))
    journal.close()
    again = Journal(path)
    assert again.finished_among(["a.png"]) == {"a.png"}
    again.close()


def test_other_options_on_the_same_dst_are_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite3")
    journal = Journal(path)
    journal.check_options({"max_size": "100x100", "rotate_deg": "0"})
    journal.check_options({"max_size": "100x100", "rotate_deg": "0"})
    with pytest.raises(JournalError, match="max_size was 100x100, now 200x200"):
        journal.check_options({"max_size": "200x200", "rotate_deg": "0"})
    journal.close()


def test_a_file_that_is_not_a_journal_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"definitely not SQLite" * 100)
    with pytest.raises(JournalError):
        Journal(str(path))
