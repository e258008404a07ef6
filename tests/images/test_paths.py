"""Sharded output paths and the directory checks that keep outputs off the inputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from service.images.paths import DirectoryError, check_directories, journal_key, output_path


def test_outputs_are_sharded_over_two_levels_of_256_directories() -> None:
    paths = [output_path(f"d{n // 1000}/img{n}.jpg") for n in range(20_000)]
    assert len(set(paths)) == len(paths)
    for path in paths[:50]:
        first, second, name = path.split("/")
        assert len(first) == len(second) == 2
        assert name.endswith(".jpg")
    per_directory = Counter(path.rsplit("/", 1)[0] for path in paths)
    # 20,000 images over up to 65,536 directories: none gets more than a handful.
    assert max(per_directory.values()) < 10


def test_the_same_name_in_two_folders_gets_two_outputs() -> None:
    assert output_path("a/cat.jpg") != output_path("b/cat.jpg")
    assert output_path("a/cat.jpg") == output_path("a/cat.jpg")
    assert output_path("a/cat.JPG").endswith("-cat.jpg")


def test_a_name_that_is_not_utf8_still_has_a_key_and_an_output() -> None:
    rel = b"caf\xe9.png".decode("utf-8", "surrogateescape")
    assert journal_key(rel) == "caf\\xe9.png"
    assert output_path(rel).endswith(".png")


def test_dst_may_sit_inside_src_and_is_then_left_out(tmp_path: Path) -> None:
    src, exclude = check_directories(str(tmp_path), str(tmp_path / "out"))
    assert src == str(tmp_path.resolve())
    assert exclude == str((tmp_path / "out").resolve())
    assert check_directories(str(tmp_path / "."), str(tmp_path.parent / "elsewhere"))[1] is None


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        ("in", "in", "DST must not be SRC"),
        ("out/in", "out", "SRC must not be inside DST"),
        ("missing", "out", "is not a directory"),
        ("in", "file", "is not a directory"),
    ],
)
def test_directories_that_could_lose_inputs_are_refused(
    tmp_path: Path, src: str, dst: str, message: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out" / "in").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DirectoryError, match=message):
        check_directories(str(tmp_path / src), str(tmp_path / dst))


@pytest.mark.parametrize("char", ["a", "é", "水", "\U0001d400"])  # 1 to 4 bytes in UTF-8
def test_an_output_name_stays_within_255_bytes_with_its_partial_suffix(char: str) -> None:
    name = output_path(f"dir/{char * 250}.jpeg").rsplit("/", 1)[1]
    assert len(f"{name}.partial".encode()) <= 255
    assert name.endswith(".jpeg")
    assert char in name  # the start of the stem is kept


def test_the_journal_key_is_one_to_one_for_names_that_are_not_utf8() -> None:
    raw = b"caf\xe9.png".decode("utf-8", "surrogateescape")
    literal = "caf\\xe9.png"  # a real name with a backslash in it
    assert journal_key(raw) != journal_key(literal)
    assert output_path(raw) != output_path(literal)
    assert journal_key("plain/é.png") == "plain/é.png"
