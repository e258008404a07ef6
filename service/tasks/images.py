"""A task's image, checked: base64 decoded strictly, then opened, verified and fully decoded
by Pillow. Pure: bytes in, a :class:`CheckedImage` or an :class:`ImageRejected` out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from .gif_blocks import TooManyFramesError, count_gif_frames
from .jpeg_scans import (
    DEFAULT_MAX_SCANS,
    JpegCutShortError,
    TooManyScansError,
    count_jpeg_scans,
)

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_SCANS",
    "CheckedImage",
    "ImageRejected",
    "check_image",
    "decode_base64",
    "max_base64_chars",
]

logger = logging.getLogger("service.tasks.images")

#: Pillow's format name -> the MIME type served and the file suffix stored.
ALLOWED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", ".jpg"),
    # A JPEG with extra pictures (a phone's depth or gain map): Pillow names it MPO.
    "MPO": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "GIF": ("image/gif", ".gif"),
    "BMP": ("image/bmp", ".bmp"),
    "WEBP": ("image/webp", ".webp"),
    "TIFF": ("image/tiff", ".tiff"),
}


#: Frames (or pages) an image may have unless configured (``MAX_IMAGE_FRAMES``): an
#: animation of 40 s at 25 frames a second; each frame costs decoder time, however small.
DEFAULT_MAX_FRAMES = 1000


class ImageRejected(ValueError):
    """Not an acceptable image: ``status`` is 400 (invalid) or 413 (too large)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CheckedImage:
    data: bytes
    format: str
    mime_type: str
    suffix: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def max_base64_chars(max_bytes: int) -> int:
    """The longest base64 text that can decode to at most ``max_bytes`` bytes."""
    return 4 * ((max_bytes + 2) // 3)


def decode_base64(text: str, *, max_bytes: int) -> bytes:
    """Strict base64 (the standard alphabet, padded; whitespace is not allowed): 413 before
    decoding if the text is too long to fit ``max_bytes``, 400 if it is not base64."""
    if len(text) > max_base64_chars(max_bytes):
        raise ImageRejected(
            413, "image_too_large", f"image: more than {max_bytes} bytes (MAX_IMAGE_BYTES)"
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected(400, "invalid_image", "image: not valid base64") from None
    if not data:
        raise ImageRejected(400, "invalid_image", "image: empty")
    if len(data) > max_bytes:
        raise ImageRejected(
            413, "image_too_large", f"image: more than {max_bytes} bytes (MAX_IMAGE_BYTES)"
        )
    return data


def check_image(
    data: bytes,
    *,
    max_pixels: int,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_scans: int = DEFAULT_MAX_SCANS,
) -> CheckedImage:
    """``data`` as an image of an allowed format: its header is read, its size checked
    against ``max_pixels`` before anything is decoded, then ``verify()`` checks its
    structure and a second open decodes every pixel of every frame (``load()``), each
    frame's size counted before it is decoded, so a truncated or corrupt file is refused and
    no frame can make the decoded total exceed ``max_pixels``. At most ``max_frames``
    frames (pages) are decoded: one more is a 413 (a GIF's are counted before anything is
    decoded). A JPEG picture of more than ``max_scans`` scans is a 413 too, found before it
    is decoded (:mod:`~service.tasks.jpeg_scans`). A JPEG that ends early is refused (a
    scan short of restart markers, see :mod:`~service.tasks.jpeg_scans`; its last scan cut
    short, see :func:`_jpeg_ends_early`). CPU and memory: call it in a thread, a few at a
    time."""
    try:
        with warnings.catch_warnings():
            # Our own limit is checked below; Pillow's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format or ""
                width, height = probe.size
                if kind not in ALLOWED_FORMATS:
                    raise ImageRejected(
                        400,
                        "unsupported_image_type",
                        f"image: {kind or 'this'} format is not accepted"
                        " (accepted: JPEG, PNG, GIF, BMP, WebP, TIFF)",
                    )
                _check_pixels(width, height, max_pixels)
                if kind == "GIF":
                    count_gif_frames(data, max_frames=max_frames)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                jpeg = data if kind in ("JPEG", "MPO") else None
                _decode_frames(image, max_pixels, max_frames, jpeg, max_scans)
                if kind in ("JPEG", "MPO") and _jpeg_ends_early(data, image):
                    raise ImageRejected(400, "invalid_image", "image: corrupt or truncated")
    except ImageRejected:
        raise
    except TooManyFramesError:
        raise _too_many_frames(max_frames) from None
    except TooManyScansError:
        raise ImageRejected(
            413, "too_many_scans", f"image: more than {max_scans} scans (MAX_JPEG_SCANS)"
        ) from None
    except JpegCutShortError as exc:
        logger.debug("image refused as corrupt: %s", exc)
        raise ImageRejected(400, "invalid_image", "image: corrupt or truncated") from None
    except Image.DecompressionBombError:
        raise ImageRejected(
            413, "image_too_large", f"image: more than {max_pixels} pixels (MAX_IMAGE_PIXELS)"
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(400, "invalid_image", "image: not an image") from None
    except MemoryError:
        raise
    except Exception as exc:
        # Pillow reports a corrupt or truncated file with OSError, SyntaxError, ValueError,
        # EOFError, but also IndexError (a GIF cut short) or TypeError (a TIFF's page cut
        # short): these are the client's bytes, so any of them is a 400. Pillow's words
        # stay in the log (they describe its internals, not what the client can do).
        logger.debug("image refused as corrupt: %r", exc)
        raise ImageRejected(400, "invalid_image", "image: corrupt or truncated") from None
    mime_type, suffix = ALLOWED_FORMATS[kind]
    return CheckedImage(data, kind, mime_type, suffix, width, height)


def _decode_frames(
    image: Image.Image, max_pixels: int, max_frames: int, jpeg: bytes | None, max_scans: int
) -> None:
    """Decode every frame (an animation) or page (a TIFF), which may differ in size: each
    one's pixels count, checked before it is decoded. Frames are reached one ``seek`` at a
    time (never ``n_frames``, which walks them all first), so at most ``max_frames`` are
    touched. With ``jpeg`` (the file's bytes: a JPEG, or an MPO of several), each picture's
    scans are counted and its restart markers checked before it is decoded."""
    pixels = 0
    frame = 0
    while True:
        pixels += image.width * image.height
        if pixels > max_pixels:
            raise ImageRejected(
                413,
                "image_too_large",
                f"image: more than {max_pixels} pixels in its"
                f" {frame + 1} frames (MAX_IMAGE_PIXELS)",
            )
        if jpeg is not None:
            # The tile's offset is where libjpeg starts reading: the picture's SOI.
            tile = image.tile if isinstance(image, ImageFile.ImageFile) else []
            start = tile[0][2] if tile else 0
            count_jpeg_scans(jpeg, max_scans=max_scans, start=start)
        image.load()
        try:
            image.seek(frame + 1)
        except EOFError:
            return
        frame += 1
        if frame >= max_frames:
            raise _too_many_frames(max_frames)


def _too_many_frames(max_frames: int) -> ImageRejected:
    return ImageRejected(
        413, "too_many_frames", f"image: more than {max_frames} frames (MAX_IMAGE_FRAMES)"
    )


def _filler(seed: bytes) -> bytes:
    """1,020 bytes that look random, never ``00`` or ``FF`` (a marker's start)."""
    stream = b"".join(hashlib.sha256(seed + bytes([index])).digest() for index in range(40))
    return bytes(byte for byte in stream if byte not in (0x00, 0xFF))[:1020]


#: Entropy-coded bytes no JPEG needs. Random-looking: a regular pattern (``00 01 02 ...``,
#: mostly zero bits) decodes as libjpeg's zero bits do often enough to hide a cut (a
#: baseline JPEG cut in its last ~40 bytes, with ``FF D9`` appended, passed for whole).
_FILLER = _filler(b"jpeg filler")


def _jpeg_ends_early(data: bytes, decoded: Image.Image) -> bool:
    """True if the JPEG's last scan ends before its pixels do.

    libjpeg meets a marker (an ``FF D9`` appended to a file cut short) inside a scan's data,
    warns "Corrupt JPEG data: premature end of data segment" and fills the rest with zeros;
    Pillow's decoder drops libjpeg's warnings (``output_message`` does nothing in its
    ``JpegDecode.c``), and ``LOAD_TRUNCATED_IMAGES`` plays no part since no byte is missing.
    So the file is decoded again with filler bytes put in front of that marker: a whole scan
    never reads them (libjpeg skips extraneous bytes before a marker), so the pixels are the
    same; a scan cut short reads them instead of zeros, and the pixels differ. ``decoded``
    is the last frame, loaded; the filler goes into the last frame's last scan. (A file cut
    at a restart marker or between two scans, whose last scan is whole, is found before it
    is decoded: :mod:`~service.tasks.jpeg_scans`.)"""
    end = _last_scan_end(data)
    if end is None:
        return False
    padded = data[:end] + _FILLER + data[end:]
    with Image.open(io.BytesIO(padded)) as again:
        if decoded.tell():
            again.seek(decoded.tell())
        again.load()
        if (again.mode, again.size) != (decoded.mode, decoded.size):
            return True
        band = max(1, (1 << 20) // max(1, decoded.width))  # compare ~1 M pixels at a time
        for top in range(0, decoded.height, band):
            box = (0, top, decoded.width, min(decoded.height, top + band))
            if again.crop(box).tobytes() != decoded.crop(box).tobytes():
                return True
    return False


def _last_scan_end(data: bytes) -> int | None:
    """Where the entropy-coded data of the file's last scan (``FF DA``) ends: at the first
    marker after it (``FF`` followed by neither ``00``, a stuffed byte, nor ``D0``-``D7``,
    a restart, nor ``FF``, a fill byte). None without a scan or a marker after it."""
    start = data.rfind(b"\xff\xda")
    if start < 0 or start + 4 > len(data):
        return None
    position = start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return None
        following = data[position + 1]
        if following == 0x00 or following == 0xFF or 0xD0 <= following <= 0xD7:
            position += 1
            continue
        return position


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            413,
            "image_too_large",
            f"image: {width}x{height} is more than {max_pixels} pixels (MAX_IMAGE_PIXELS)",
        )
