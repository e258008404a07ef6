"""A task's image is checked by decoding it: strict base64, an allowed format, the byte and
pixel limits, and every pixel decodable."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from service.tasks.images import (
    ALLOWED_FORMATS,
    ImageRejected,
    check_image,
    decode_base64,
    max_base64_chars,
)
from tests.task_images import FORMATS, b64, image_bytes

MIB = 1024 * 1024


@pytest.mark.parametrize("kind", FORMATS)
def test_every_allowed_format_is_accepted_with_its_mime_type(kind: str) -> None:
    data = image_bytes(kind)
    image = check_image(decode_base64(b64(data), max_bytes=MIB), max_pixels=10_000)
    assert image.data == data
    assert (image.mime_type, image.suffix) == ALLOWED_FORMATS[kind]
    assert (image.width, image.height) == (8, 6)


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
