"""The CPU step: formats, EXIF orientation, rotation, fitting, the perceptual hash, and a
corrupt image as an image failure."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from service.images.steps import (
    ImageFailedError,
    fit_within,
    perceptual_hash,
    process_file,
    stops_the_run,
    transform,
)
from tests.support.image_samples import FORMATS, is_red, marked, save_with_orientation


@pytest.mark.parametrize("image_format", sorted(FORMATS))
def test_every_format_is_shrunk_to_fit_and_kept_in_its_format(
    tmp_path: Path, image_format: str
) -> None:
    src = tmp_path / f"in{FORMATS[image_format]}"
    marked(400, 200).save(src, format=image_format)
    out = tmp_path / "out" / f"x{FORMATS[image_format]}"
    result = process_file(str(src), str(out), (100, 100), 0)
    with Image.open(out) as written:
        assert written.format == image_format
        assert written.size == (100, 50)
    assert (result.width, result.height) == (100, 50)
    assert result.payload == out.read_bytes()
    assert result.content_type.startswith("image/")
    assert not list(out.parent.glob("*.partial"))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 200x100 with the red block top-left; orientation 6 means "rotate 90° clockwise
    # to display": shown 100x200 with the block top-right.
    src = tmp_path / "rotated.jpg"
    save_with_orientation(src, marked(200, 100), 6)
    out = tmp_path / "out.jpg"
    result = process_file(str(src), str(out), (1000, 1000), 0)
    assert (result.width, result.height) == (100, 200)
    with Image.open(out) as written:
        assert written.size == (100, 200)
        rgb = written.convert("RGB")
        assert is_red(rgb.getpixel((95, 5)))
        assert not is_red(rgb.getpixel((5, 5)))
        assert written.getexif().get(0x0112) in (None, 1)  # no orientation left to apply


def test_extra_rotation_turns_counter_clockwise(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    marked(200, 100).save(src)
    out = tmp_path / "out.png"
    process_file(str(src), str(out), (1000, 1000), 90)
    with Image.open(out) as written:
        assert written.size == (100, 200)
        # Counter-clockwise: the top-left block goes to the bottom-left.
        assert is_red(written.convert("RGB").getpixel((5, 195)))


def test_any_angle_grows_the_canvas() -> None:
    turned = transform(marked(100, 100), (1000, 1000), 45)
    assert turned.size[0] > 140
    assert turned.size[1] > 140


def test_fit_within_keeps_the_ratio_and_never_enlarges() -> None:
    assert fit_within((4000, 3000), (1024, 1024)) == (1024, 768)
    assert fit_within((3000, 4000), (1024, 1024)) == (768, 1024)
    assert fit_within((50, 40), (1024, 1024)) == (50, 40)
    assert fit_within((10000, 1), (100, 100)) == (100, 1)


def test_a_corrupt_image_is_an_image_failure(tmp_path: Path) -> None:
    src = tmp_path / "bad.jpg"
    src.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with pytest.raises(ImageFailedError):
        process_file(str(src), str(tmp_path / "out.jpg"), (100, 100), 0)
    assert not (tmp_path / "out.jpg").exists()


def test_a_truncated_image_is_an_image_failure(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    marked(300, 300).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(ImageFailedError):
        process_file(str(cut), str(tmp_path / "out.png"), (100, 100), 0)


def test_the_perceptual_hash_is_stable_and_tells_images_apart() -> None:
    a = marked(200, 100)
    assert perceptual_hash(a) == perceptual_hash(a.copy())
    assert 0 <= perceptual_hash(a) < 1 << 64
    similar = a.resize((180, 90))
    other = a.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    distance_similar = bin(perceptual_hash(a) ^ perceptual_hash(similar)).count("1")
    distance_other = bin(perceptual_hash(a) ^ perceptual_hash(other)).count("1")
    assert distance_similar <= 6
    assert distance_other >= 10


def test_an_output_the_file_system_refuses_fails_that_image_only(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    marked(40, 20).save(src)
    with pytest.raises(ImageFailedError, match="name too long"):
        process_file(str(src), str(tmp_path / "out" / ("x" * 300 + ".png")), (10, 10), 0)


def test_only_a_full_read_only_or_failing_disk_stops_the_run() -> None:
    for code in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO):
        assert stops_the_run(OSError(code, os.strerror(code)))
    for code in (errno.ENAMETOOLONG, errno.EACCES, errno.ENOENT, errno.EEXIST):
        assert not stops_the_run(OSError(code, os.strerror(code)))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_the_colour_profile_is_kept(tmp_path: Path, image_format: str) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / f"in{FORMATS[image_format]}"
    marked(80, 40).save(src, format=image_format, icc_profile=profile)
    out = tmp_path / f"out{FORMATS[image_format]}"
    process_file(str(src), str(out), (40, 40), 0)
    with Image.open(out) as written:
        assert written.info.get("icc_profile") == profile


def test_a_jpeg_is_written_at_a_quality_that_keeps_detail(tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    noisy = Image.effect_noise((256, 256), 64).convert("RGB")
    noisy.save(src, quality=95)
    process_file(str(src), str(tmp_path / "out.jpg"), (256, 256), 0)
    default = tmp_path / "default.jpg"
    noisy.save(default)  # Pillow's default quality, 75
    assert (tmp_path / "out.jpg").stat().st_size > 1.3 * default.stat().st_size


@pytest.mark.parametrize(
    ("orientation", "size", "red_corner"),
    [
        (1, (200, 100), "top-left"),
        (2, (200, 100), "top-right"),  # mirrored
        (3, (200, 100), "bottom-right"),
        (4, (200, 100), "bottom-left"),  # mirrored
        (5, (100, 200), "top-left"),  # mirrored and turned
        (6, (100, 200), "top-right"),
        (7, (100, 200), "bottom-right"),  # mirrored and turned
        (8, (100, 200), "bottom-left"),
    ],
)
def test_every_exif_orientation_is_shown_upright(
    tmp_path: Path, orientation: int, size: tuple[int, int], red_corner: str
) -> None:
    src = tmp_path / "in.jpg"
    save_with_orientation(src, marked(200, 100), orientation)
    out = tmp_path / "out.png"
    process_file(str(src), str(out), (1000, 1000), 0)
    with Image.open(out) as written:
        assert written.size == size
        rgb = written.convert("RGB")
        width, height = size
        corners = {
            "top-left": (5, 5),
            "top-right": (width - 6, 5),
            "bottom-left": (5, height - 6),
            "bottom-right": (width - 6, height - 6),
        }
        assert [name for name, xy in corners.items() if is_red(rgb.getpixel(xy))] == [red_corner]


def test_an_empty_file_is_an_image_failure(tmp_path: Path) -> None:
    src = tmp_path / "empty.jpg"
    src.write_bytes(b"")
    with pytest.raises(ImageFailedError):
        process_file(str(src), str(tmp_path / "out" / "empty.jpg"), (100, 100), 0)
    assert not (tmp_path / "out").exists()
