"""The lazy walk: deterministic order, images only, the output directory left out, and
memory that does not grow with the tree."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from service.images.walk import Entry, SyntheticTree, os_lister, walk_images


def test_walk_is_sorted_per_directory_depth_first_and_images_only(tmp_path: Path) -> None:
    for rel in ["b/2.png", "b/1.JPG", "a/z.gif", "a/notes.txt", "c.webp", "a/sub/x.tiff"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    walked = list(walk_images(os_lister(str(tmp_path))))
    assert walked == ["a/sub/x.tiff", "a/z.gif", "b/1.JPG", "b/2.png", "c.webp"]
    assert walked == list(walk_images(os_lister(str(tmp_path))))


def test_the_output_directory_inside_the_input_is_not_walked(tmp_path: Path) -> None:
    (tmp_path / "in.png").write_bytes(b"")
    (tmp_path / "out" / "ab").mkdir(parents=True)
    (tmp_path / "out" / "ab" / "made.png").write_bytes(b"")
    lister = os_lister(str(tmp_path), exclude=os.path.abspath(tmp_path / "out"))
    assert list(walk_images(lister)) == ["in.png"]


def test_an_unreadable_directory_is_reported_and_skipped() -> None:
    def lister(rel: str) -> list[Entry]:
        if rel == "locked":
            raise PermissionError(13, "Permission denied")
        if rel == "":
            return [Entry("locked", True), Entry("open", True)]
        return [Entry("a.png", False)]

    errors: list[str] = []
    walked = list(walk_images(lister, on_error=lambda rel, exc: errors.append(rel)))
    assert walked == ["open/a.png"]
    assert errors == ["locked"]


def test_the_synthetic_tree_has_every_file_once_in_order() -> None:
    walked = list(walk_images(SyntheticTree(2_345, fanout=10)))
    assert len(walked) == len(set(walked)) == 2_345
    assert walked == sorted(walked)
    assert walked[-1].endswith("i000002344.jpg")


def _walk_peak_bytes(files: int) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _ in walk_images(SyntheticTree(files, fanout=100)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == files
    return peak


@pytest.mark.parametrize("files", [100_000])
def test_walking_100k_entries_holds_one_listing_per_level_not_every_path(files: int) -> None:
    small = _walk_peak_bytes(files // 10)
    large = _walk_peak_bytes(files)
    # A list of 100k paths alone is about 9 MB; the walk holds a sorted listing of at most
    # 100 entries per level of the tree.
    assert large < 300_000
    assert large < 1.5 * small + 50_000


def test_an_entry_that_cannot_be_examined_is_reported_and_its_siblings_are_walked(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")  # stat: ELOOP
    (tmp_path / "loop.txt").symlink_to("loop.txt")  # not an image name: left out silently
    (tmp_path / "z.png").write_bytes(b"")
    bad: list[tuple[str, str]] = []
    unreadable: list[str] = []
    walked = list(
        walk_images(
            os_lister(str(tmp_path)),
            on_error=lambda rel, exc: unreadable.append(rel),
            on_bad_entry=lambda rel, error: bad.append((rel, error)),
        )
    )
    assert walked == ["a.png", "z.png"]
    assert unreadable == []
    assert [rel for rel, _ in bad] == ["loop.jpg"]
    assert "symbolic links" in bad[0][1]
