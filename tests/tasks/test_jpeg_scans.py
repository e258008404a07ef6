"""A JPEG's markers walked without decoding: its scans counted, its restart markers checked
(the pure part; through ``check_image``: test_tasks_images)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from service.tasks.jpeg_scans import (
    JpegCutShortError,
    TooManyScansError,
    count_jpeg_scans,
)
from tests.support.task_images import many_scans_jpeg, noisy_bytes

RESTART = re.compile(rb"\xff[\xd0-\xd7]")


def jpeg(mode: str = "RGB", size: tuple[int, int] = (20, 20), **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").convert(mode).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "progressive", "scans"),
    [
        ("RGB", False, 1),
        ("RGB", True, 10),  # libjpeg's default progression
        ("L", True, 6),
        ("CMYK", True, 18),
    ],
)
def test_the_scans_of_pillows_jpegs_are_counted(mode: str, progressive: bool, scans: int) -> None:
    assert count_jpeg_scans(jpeg(mode, progressive=progressive), max_scans=100) == scans


def test_one_scan_past_the_limit_is_refused() -> None:
    data = many_scans_jpeg(16, 101)
    assert count_jpeg_scans(data, max_scans=101) == 101
    with pytest.raises(TooManyScansError):
        count_jpeg_scans(data, max_scans=100)


def test_fill_bytes_and_junk_before_a_marker_hide_no_scan() -> None:
    # libjpeg skips any bytes before a marker (warning only) and FF fill bytes: so does the walk.
    data = many_scans_jpeg(16, 12)
    padded = data.replace(b"\xff\xda", b"junk\xff\xff\xff\xda")
    assert count_jpeg_scans(padded, max_scans=100) == 12
    with pytest.raises(TooManyScansError):
        count_jpeg_scans(padded, max_scans=11)


def test_a_picture_after_the_first_is_walked_from_its_own_start() -> None:
    first, second = jpeg(), many_scans_jpeg(16, 30)
    data = first + second
    assert count_jpeg_scans(data, max_scans=100) == 1  # the first picture ends at its EOI
    assert count_jpeg_scans(data, max_scans=100, start=len(first)) == 30


@pytest.mark.parametrize(
    "options",
    [
        {"restart_marker_blocks": 1},
        {"restart_marker_blocks": 3, "progressive": True},
        {"restart_marker_rows": 1},
        {"restart_marker_blocks": 2, "subsampling": 0},
        {"restart_marker_blocks": 5, "subsampling": 1},
    ],
    ids=repr,
)
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_whole_jpegs_with_restart_markers_have_all_of_them(
    options: dict[str, object], mode: str
) -> None:
    markers = 0
    for size in ((1, 1), (8, 8), (17, 9), (33, 47), (200, 130)):
        data = jpeg(mode, size, **options)
        markers += len(RESTART.findall(data))
        count_jpeg_scans(data, max_scans=100)
    assert markers >= 10


def test_a_restart_interval_cut_out_of_a_scan_is_found() -> None:
    # libjpeg meets RST(n+1) where RSTn should be, fills that interval with grey and goes on.
    data = noisy_bytes("JPEG", size=(64, 48), restart_marker_blocks=1)
    markers = [found.start() for found in RESTART.finditer(data)]
    assert len(markers) > 3
    holed = data[: markers[1]] + data[markers[2] :]
    with pytest.raises(JpegCutShortError):
        count_jpeg_scans(holed, max_scans=100)


@pytest.mark.parametrize("progressive", [False, True])
def test_a_scan_cut_right_before_a_restart_marker_is_found(progressive: bool) -> None:
    data = noisy_bytes("JPEG", size=(64, 48), restart_marker_blocks=2, progressive=progressive)
    markers = [found.start() for found in RESTART.finditer(data)]
    assert markers
    for marker in markers:
        with pytest.raises(JpegCutShortError):
            count_jpeg_scans(data[:marker] + b"\xff\xd9", max_scans=100)


def test_a_file_that_is_no_jpeg_or_is_cut_inside_a_segment_ends_the_walk_quietly() -> None:
    # The decoder refuses these; the walk only must not fail on them.
    data = jpeg(progressive=True)
    assert count_jpeg_scans(b"not a jpeg", max_scans=100) == 0
    assert count_jpeg_scans(data[:30], max_scans=100) == 0
    assert count_jpeg_scans(data[: data.rfind(b"\xff\xda") + 5], max_scans=100) == 9
    assert count_jpeg_scans(data[:-2], max_scans=100) == 10  # no EOI


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_progressive_jpeg_that_ends_before_its_last_scan_is_cut_short(mode: str) -> None:
    data = jpeg(mode, (40, 30), progressive=True)
    scans = [scan.start() for scan in re.finditer(rb"\xff\xda", data)]
    assert count_jpeg_scans(data, max_scans=100) == len(scans)
    for scan in scans[1:]:
        with pytest.raises(JpegCutShortError, match="not coded to their last bit"):
            count_jpeg_scans(data[:scan] + b"\xff\xd9", max_scans=100)


def test_a_baseline_jpeg_cut_before_its_scan_is_cut_short() -> None:
    data = jpeg()
    assert count_jpeg_scans(data, max_scans=100) == 1
    headers_only = data[: data.find(b"\xff\xda")] + b"\xff\xd9"
    with pytest.raises(JpegCutShortError):
        count_jpeg_scans(headers_only, max_scans=100)
