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

from PIL import Image, UnidentifiedImageError

__all__ = [
    "ALLOWED_FORMATS",
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


def check_image(data: bytes, *, max_pixels: int) -> CheckedImage:
    """``data`` as an image of an allowed format: its header is read, its size checked
    against ``max_pixels`` before anything is decoded, then ``verify()`` checks its
    structure and a second open decodes every pixel of every frame (``load()``), each
    frame's size counted before it is decoded, so a truncated or corrupt file is refused and
    no frame can make the decoded total exceed ``max_pixels``. CPU and memory: call it in
    a thread, a few at a time."""
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
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                # Every frame (an animation) or page (a TIFF) is decoded, and pages may
                # differ in size: each one's pixels count, checked before it is decoded.
                pixels = 0
                for frame in range(getattr(image, "n_frames", 1)):
                    image.seek(frame)
                    pixels += image.width * image.height
                    if pixels > max_pixels:
                        raise ImageRejected(
                            413,
                            "image_too_large",
                            f"image: more than {max_pixels} pixels in its"
                            f" {frame + 1} frames (MAX_IMAGE_PIXELS)",
                        )
                    image.load()
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        raise ImageRejected(
            413, "image_too_large", f"image: more than {max_pixels} pixels (MAX_IMAGE_PIXELS)"
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(400, "invalid_image", "image: not an image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports a corrupt or truncated file with any of these; its words stay in
        # the log (they describe Pillow's internals, not what the client can do).
        logger.debug("image refused as corrupt: %r", exc)
        raise ImageRejected(400, "invalid_image", "image: corrupt or truncated") from None
    mime_type, suffix = ALLOWED_FORMATS[kind]
    return CheckedImage(data, kind, mime_type, suffix, width, height)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            413,
            "image_too_large",
            f"image: {width}x{height} is more than {max_pixels} pixels (MAX_IMAGE_PIXELS)",
        )
