"""A task's image is checked by decoding it: strict base64, an allowed format, the byte and
pixel limits, and every pixel decodable."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from service.tasks.images import (
    ALLOWED_FORMATS,
    ImageRejected,
    check_image,
    decode_base64,
    max_base64_chars,
)
from tests.support.task_images import (
    END_MARKERS,
    FORMATS,
    b64,
    image_bytes,
    many_frames_gif,
    many_scans_jpeg,
    noisy_bytes,
    repeat_last_scan,
)

MIB = 1024 * 1024


@pytest.mark.parametrize("kind", FORMATS)
def test_every_allowed_format_is_accepted_with_its_mime_type(kind: str) -> None:
    data = image_bytes(kind)
    image = check_image(decode_base64(b64(data), max_bytes=MIB), max_pixels=10_000)
    assert image.data == data
    assert (image.mime_type, image.suffix) == ALLOWED_FORMATS[kind]
    assert (image.width, image.height) == (8, 6)


def answer(data: bytes) -> tuple[int, str]:
    """What ``check_image`` makes of ``data``: (200, "accepted") or the refusal."""
    try:
        check_image(data, max_pixels=100_000)
    except ImageRejected as refused:
        return refused.status, refused.code
    return 200, "accepted"


def rejected(call: object) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        call()  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize(
    "text", ["not base64!", "aGVsbG8", "aGVs bG8=", "aGVsbG8=\n", "", "===="], ids=repr
)
def test_text_that_is_not_strict_base64_is_400(text: str) -> None:
    failure = rejected(lambda: decode_base64(text, max_bytes=MIB))
    assert (failure.status, failure.code) == (400, "invalid_image")


def test_base64_too_long_for_the_limit_is_413_before_decoding() -> None:
    data = b"x" * 301
    failure = rejected(lambda: decode_base64(b64(data), max_bytes=300))
    assert (failure.status, failure.code) == (413, "image_too_large")
    assert decode_base64(b64(b"x" * 300), max_bytes=300) == b"x" * 300


def test_the_longest_base64_of_the_limit_is_allowed() -> None:
    assert max_base64_chars(300) == len(b64(b"x" * 300))
    assert max_base64_chars(301) == len(b64(b"x" * 301))


def test_bytes_that_are_not_an_image_are_400() -> None:
    failure = rejected(lambda: check_image(b"hello, this is text", max_pixels=10_000))
    assert (failure.status, failure.code, failure.detail) == (
        400,
        "invalid_image",
        "image: not an image",
    )


def test_magic_bytes_alone_are_not_an_image() -> None:
    fake_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    assert rejected(lambda: check_image(fake_png, max_pixels=10_000)).status == 400


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "WEBP"])
def test_a_truncated_image_is_400(kind: str) -> None:
    data = image_bytes(kind, size=(64, 64), color="blue")
    failure = rejected(lambda: check_image(data[: len(data) * 2 // 3], max_pixels=100_000))
    assert (failure.status, failure.code) == (400, "invalid_image")


def test_a_format_outside_the_list_is_400() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="ICO")
    failure = rejected(lambda: check_image(buffer.getvalue(), max_pixels=10_000))
    assert (failure.status, failure.code) == (400, "unsupported_image_type")


def test_too_many_pixels_is_413_without_decoding_them() -> None:
    # 5,000 x 5,000 of one colour: a few KiB of PNG, 25 M pixels to decode.
    bomb = image_bytes("PNG", size=(5000, 5000), color="white")
    assert len(bomb) < 100_000
    failure = rejected(lambda: check_image(bomb, max_pixels=1_000_000))
    assert (failure.status, failure.code) == (413, "image_too_large")
    assert "5000x5000" in failure.detail


def test_an_animation_counts_the_pixels_of_every_frame() -> None:
    frames = [Image.new("RGB", (100, 100), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    data = buffer.getvalue()
    assert check_image(data, max_pixels=30_000).format == "GIF"
    assert rejected(lambda: check_image(data, max_pixels=29_999)).status == 413


def test_the_sha256_is_of_the_exact_bytes() -> None:
    import hashlib

    data = image_bytes("PNG")
    assert check_image(data, max_pixels=100).sha256 == hashlib.sha256(data).hexdigest()


def test_every_page_of_a_tiff_counts_even_when_pages_differ_in_size() -> None:
    small, large = Image.new("RGB", (10, 10)), Image.new("RGB", (1500, 1000))
    buffer = io.BytesIO()
    small.save(buffer, format="TIFF", save_all=True, append_images=[large])
    data = buffer.getvalue()
    assert check_image(data, max_pixels=1_500_100).format == "TIFF"
    failure = rejected(lambda: check_image(data, max_pixels=1_000_000))
    assert (failure.status, failure.code) == (413, "image_too_large")


def test_a_phone_jpeg_with_extra_pictures_is_a_jpeg() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(
        buffer, format="MPO", save_all=True, append_images=[Image.new("RGB", (8, 8))]
    )
    image = check_image(buffer.getvalue(), max_pixels=10_000)
    assert (image.format, image.mime_type, image.suffix) == ("MPO", "image/jpeg", ".jpg")


def test_pillows_own_words_stay_out_of_the_answer() -> None:
    data = image_bytes("PNG", size=(64, 64), color="blue")
    failure = rejected(lambda: check_image(data[:-30], max_pixels=100_000))
    assert failure.detail == "image: corrupt or truncated"


#: Whole files of every accepted format and its variants (random pixels: every byte counts).
TRUNCATION_SAMPLES: dict[str, tuple[str, dict[str, object]]] = {
    "JPEG": ("JPEG", {}),
    "JPEG-progressive": ("JPEG", {"progressive": True}),
    "JPEG-restart-markers": ("JPEG", {"restart_marker_blocks": 4}),
    "JPEG-large": ("JPEG", {"size": (640, 480), "quality": 90}),
    "MPO": ("MPO", {"frames": 2}),
    "PNG": ("PNG", {}),
    "APNG": ("PNG", {"frames": 3}),
    "GIF": ("GIF", {}),
    "GIF-animated": ("GIF", {"frames": 3}),
    "WEBP": ("WEBP", {}),
    "WEBP-lossless": ("WEBP", {"lossless": True}),
    "WEBP-animated": ("WEBP", {"frames": 3}),
    "BMP": ("BMP", {}),
    "TIFF": ("TIFF", {}),
    "TIFF-lzw": ("TIFF", {"compression": "tiff_lzw"}),
    "TIFF-pages": ("TIFF", {"frames": 3}),
}
CUTS = (0.1, 0.25, 0.5, 0.66, 0.8, 0.9, 0.95)
#: A JPEG's restart markers (``FF D0`` to ``FF D7``), between its restart intervals.
RESTART_MARKER = re.compile(rb"\xff[\xd0-\xd7]")


def cut_points(data: bytes) -> list[int]:
    """Where to cut ``data``: at each of :data:`CUTS`, right before, inside and right after
    every restart marker (libjpeg fills the intervals it misses with grey, warning only),
    and right before every scan (a progressive JPEG cut there is a whole one of fewer
    scans): a JPEG cut at any of these once passed for whole."""
    points = [int(len(data) * kept) for kept in CUTS]
    for marker in RESTART_MARKER.finditer(data):
        points += [marker.start(), marker.start() + 1, marker.end()]
    points += [scan.start() for scan in re.finditer(rb"\xff\xda", data)][1:]
    return points


@pytest.mark.parametrize("sample", list(TRUNCATION_SAMPLES))
def test_an_image_cut_short_is_400_even_with_its_end_marker_appended(sample: str) -> None:
    kind, options = TRUNCATION_SAMPLES[sample]
    data = noisy_bytes(kind, **options)  # type: ignore[arg-type]
    assert check_image(data, max_pixels=10_000_000).data == data  # whole: accepted
    end = END_MARKERS.get(kind, b"")
    answers = {}
    for kept in cut_points(data) if kind in ("JPEG", "MPO") else CUTS:
        for tail in {b"", end}:
            cut = data[:kept] if isinstance(kept, int) else data[: int(len(data) * kept)]
            cut += tail
            try:
                check_image(cut, max_pixels=10_000_000)
            except ImageRejected as refused:
                answers[kept, tail] = (refused.status, refused.code)
            else:
                answers[kept, tail] = (200, "accepted")
    assert set(answers.values()) == {(400, "invalid_image")}, answers


@pytest.mark.parametrize(
    "options",
    [
        {"restart_marker_blocks": 1},
        {"restart_marker_blocks": 3, "progressive": True},
        {"restart_marker_rows": 1},
        {"restart_marker_rows": 2, "subsampling": 0},
    ],
    ids=repr,
)
def test_a_jpeg_cut_at_any_restart_marker_is_400(options: dict[str, object]) -> None:
    data = noisy_bytes("JPEG", size=(64, 48), **options)  # type: ignore[arg-type]
    assert check_image(data, max_pixels=100_000).data == data
    markers = list(RESTART_MARKER.finditer(data))
    assert len(markers) >= 2
    answers = {
        (kept, tail): answer(data[:kept] + tail)
        for marker in markers
        for kept in (marker.start(), marker.start() + 1, marker.end())
        for tail in (b"\xff\xd9", b"")
    }
    assert set(answers.values()) == {(400, "invalid_image")}, answers


def test_a_jpeg_missing_a_restart_interval_in_its_middle_is_400() -> None:
    # libjpeg meets RST(n+1) where RSTn should be and fills interval n with grey; the file's
    # end is whole, so decoding it again with filler before its EOI changes nothing.
    data = noisy_bytes("JPEG", size=(64, 48), restart_marker_blocks=1)
    markers = [marker.start() for marker in RESTART_MARKER.finditer(data)]
    holed = data[: markers[1]] + data[markers[2] :]
    failure = rejected(lambda: check_image(holed, max_pixels=100_000))
    assert (failure.status, failure.code) == (400, "invalid_image")


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_progressive_jpeg_cut_between_two_scans_is_400(mode: str) -> None:
    # What is left is a whole progressive JPEG of fewer scans: libjpeg says nothing.
    picture = Image.frombytes("RGB", (64, 48), bytes(range(256)) * 36).convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", progressive=True)
    data = buffer.getvalue()
    assert check_image(data, max_pixels=100_000).data == data
    scans = [scan.start() for scan in re.finditer(rb"\xff\xda", data)]
    answers = {
        kept: answer(data[:kept] + b"\xff\xd9")
        for scan in scans[1:]
        for kept in (scan, scan + 1)  # before its marker, or inside it: FF FF D9
    }
    assert set(answers.values()) == {(400, "invalid_image")}, (scans, answers)


def test_a_baseline_jpeg_cut_in_its_last_bytes_is_400() -> None:
    # The filler decoded in place of libjpeg's zero bits must not decode like them: a
    # regular filler (00 01 02 ...) did, for a cut within the last ~40 bytes.
    for _ in range(3):
        data = noisy_bytes("JPEG", size=(64, 48))
        assert check_image(data, max_pixels=100_000).data == data
        answers = {
            len(data) - kept: answer(data[:kept] + b"\xff\xd9")
            for kept in range(len(data) - 64, len(data) - 2)
        }
        assert set(answers.values()) == {(400, "invalid_image")}, answers


def test_a_jpeg_cut_in_half_with_ff_d9_appended_is_400() -> None:
    # The review's case: libjpeg only warns ("premature end of data segment") and fills the
    # rest with grey; Pillow drops the warning.
    data = noisy_bytes("JPEG", size=(64, 64))
    failure = rejected(lambda: check_image(data[: len(data) // 2] + b"\xff\xd9", max_pixels=10_000))
    assert (failure.status, failure.code) == (400, "invalid_image")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"progressive": True},
        {"optimize": True},
        {"progressive": True, "optimize": True, "quality": 30},
        {"restart_marker_blocks": 1},
        {"restart_marker_blocks": 3, "progressive": True},
        {"restart_marker_rows": 1},
        {"restart_marker_blocks": 2, "subsampling": 0},
        {"restart_marker_rows": 1, "subsampling": 1, "progressive": True},
        {"subsampling": 0},
        {"subsampling": 2, "quality": 100},
    ],
    ids=repr,
)
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_whole_jpegs_of_every_kind_are_accepted(options: dict[str, object], mode: str) -> None:
    for size in ((1, 1), (17, 9), (200, 130)):
        for picture in (Image.new("RGB", size, "white"), Image.linear_gradient("L").resize(size)):
            buffer = io.BytesIO()
            picture.convert(mode).save(buffer, format="JPEG", **options)
            data = buffer.getvalue()
            assert check_image(data, max_pixels=100_000).data == data
    noisy = noisy_bytes("JPEG", size=(120, 80), **options)  # type: ignore[arg-type]
    assert check_image(noisy, max_pixels=100_000).data == noisy


def test_a_jpeg_with_an_exif_thumbnail_and_bytes_after_its_end_is_accepted() -> None:
    thumbnail = image_bytes("JPEG", size=(16, 16))
    exif = Image.Exif()
    exif[0x010F] = "camera"
    data = noisy_bytes("JPEG", size=(64, 48), exif=exif.tobytes() + thumbnail)
    assert check_image(data, max_pixels=100_000).data == data
    assert check_image(data + b"\x00" * 10, max_pixels=100_000).format == "JPEG"


def test_more_frames_than_allowed_is_413_without_decoding_them() -> None:
    assert check_image(many_frames_gif(10), max_pixels=100, max_frames=10).format == "GIF"
    failure = rejected(lambda: check_image(many_frames_gif(11), max_pixels=100, max_frames=10))
    assert (failure.status, failure.code) == (413, "too_many_frames")
    assert "MAX_IMAGE_FRAMES" in failure.detail
    # 300,000 frames: refused by the default limit (1,000) before Pillow sees them.
    huge = many_frames_gif(300_000)
    failure = rejected(lambda: check_image(huge, max_pixels=40_000_000))
    assert (failure.status, failure.code) == (413, "too_many_frames")


@pytest.mark.parametrize("kind", ["PNG", "WEBP", "TIFF"])
def test_the_frame_limit_holds_for_every_animated_format(kind: str) -> None:
    data = noisy_bytes(kind, size=(4, 4), frames=4)
    assert check_image(data, max_pixels=1000, max_frames=4).format == kind
    failure = rejected(lambda: check_image(data, max_pixels=1000, max_frames=3))
    assert (failure.status, failure.code) == (413, "too_many_frames")


def test_more_scans_than_allowed_is_413_without_decoding_them() -> None:
    data = many_scans_jpeg(16, 101)
    assert check_image(data, max_pixels=1000, max_scans=101).format == "JPEG"
    failure = rejected(lambda: check_image(data, max_pixels=1000, max_scans=100))
    assert (failure.status, failure.code) == (413, "too_many_scans")
    assert "MAX_JPEG_SCANS" in failure.detail
    # 5,000 scans of 2000x2000 pixels: libjpeg would take 15 s or more; refused by the
    # default limit (100) before Pillow decodes a block.
    bomb = many_scans_jpeg(2000, 5000)
    assert len(bomb) < 200_000
    failure = rejected(lambda: check_image(bomb, max_pixels=40_000_000))
    assert (failure.status, failure.code) == (413, "too_many_scans")


def test_whole_progressive_jpegs_of_every_mode_are_within_the_default_scan_limit() -> None:
    for mode in ("RGB", "L", "CMYK"):
        data = noisy_bytes("JPEG", size=(40, 30), progressive=True)
        assert check_image(data, max_pixels=10_000).data == data
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30)).convert(mode).save(buffer, format="JPEG", progressive=True)
        assert check_image(buffer.getvalue(), max_pixels=10_000).format == "JPEG"


def test_the_scan_limit_holds_for_every_picture_of_an_mpo() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(
        buffer,
        format="MPO",
        save_all=True,
        append_images=[Image.new("RGB", (16, 16))],
        progressive=True,
    )
    whole = buffer.getvalue()
    assert check_image(whole, max_pixels=10_000).format == "MPO"
    # The second picture's last scan repeated: the first picture has its 10 scans only.
    bomb = repeat_last_scan(whole, 200)
    failure = rejected(lambda: check_image(bomb, max_pixels=10_000))
    assert (failure.status, failure.code) == (413, "too_many_scans")
