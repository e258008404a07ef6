"""The per-image CPU work, pure Pillow and no network: orient (EXIF), rotate, fit within a
maximum size, save atomically, and compute the image's "magic number" (a 64-bit perceptual
hash). ``process_file`` is what a worker process or thread runs for one image."""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageOps

__all__ = [
    "ImageFailedError",
    "Processed",
    "fit_within",
    "perceptual_hash",
    "process_file",
    "stops_the_run",
    "transform",
]

#: Pillow's formats as written by ``save`` (the output keeps the input's format).
_NEEDS_RGB = {"JPEG"}
#: Refuse images larger than this many pixels (decompression bombs) before decoding: 50
#: megapixels are 150 MB as RGB, held once per worker (Pillow's own limit, 179 MP, is
#: further and would fire first if this were above it).
MAX_PIXELS = 50_000_000
#: JPEG quality of the outputs (Pillow's default, 75, visibly softens photographs).
JPEG_QUALITY = 90
#: The formats whose writer keeps an ICC colour profile.
_KEEPS_ICC = {"JPEG", "PNG", "WEBP", "TIFF"}


#: The file system errors that make every later image fail too: they stop the run.
_RUN_STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO})


class ImageFailedError(Exception):
    """This image cannot be processed (corrupt, truncated, unsupported); the run goes on."""


def stops_the_run(exc: OSError) -> bool:
    """A full, read-only or failing disk (every later image would fail too); any other
    ``OSError`` (a name too long, a permission) is the one image's failure."""
    return exc.errno in _RUN_STOPPING_ERRNOS


@dataclass(frozen=True, slots=True)
class Processed:
    """What the CPU step found and wrote for one image; ``payload`` is the written file's
    bytes, sent to the remote service."""

    width: int
    height: int
    magic: int
    payload: bytes
    content_type: str


def fit_within(size: tuple[int, int], max_size: tuple[int, int]) -> tuple[int, int]:
    """The largest size with ``size``'s aspect ratio inside ``max_size``; never enlarges."""
    width, height = size
    max_w, max_h = max_size
    scale = min(max_w / width, max_h / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def transform(image: Image.Image, max_size: tuple[int, int], rotate_deg: float) -> Image.Image:
    """Upright by the EXIF orientation, turned ``rotate_deg`` counter-clockwise (the canvas
    grows to hold it), then shrunk to fit ``max_size``."""
    upright = ImageOps.exif_transpose(image)
    if rotate_deg % 360:
        if rotate_deg % 90 == 0:
            method = {
                90: Image.Transpose.ROTATE_90,
                180: Image.Transpose.ROTATE_180,
                270: Image.Transpose.ROTATE_270,
            }[int(rotate_deg % 360)]
            upright = upright.transpose(method)
        else:
            upright = upright.rotate(rotate_deg, expand=True, resample=Image.Resampling.BICUBIC)
    target = fit_within(upright.size, max_size)
    if target != upright.size:
        upright = upright.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return upright


@cache
def _dct_rows() -> tuple[tuple[float, ...], ...]:
    """cos((2x+1)uπ/64) for the 8 lowest frequencies u of a 32-point DCT-II."""
    return tuple(
        tuple(math.cos((2 * x + 1) * u * math.pi / 64) for x in range(32)) for u in range(8)
    )


def perceptual_hash(image: Image.Image) -> int:
    """A 64-bit pHash: the 8x8 lowest frequencies of the DCT of a 32x32 grey thumbnail, one
    bit per coefficient above their median. Deterministic for the same pixels; similar
    images get hashes a few bits apart."""
    grey = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = list(grey.tobytes())  # mode L: one byte per pixel
    rows = [pixels[y * 32 : (y + 1) * 32] for y in range(32)]
    cos = _dct_rows()
    # Separable DCT: along x for each row, then along y, only the 8 lowest of each.
    along_x = [[sum(c * p for c, p in zip(cu, row, strict=True)) for cu in cos] for row in rows]
    coefficients = [sum(cv[y] * along_x[y][u] for y in range(32)) for cv in cos for u in range(8)]
    median = sorted(coefficients[1:])[31]  # leave out the DC term, the mean brightness
    value = 0
    for coefficient in coefficients:
        value = (value << 1) | (coefficient > median)
    return value


def _save_options(image_format: str, icc_profile: object) -> dict[str, object]:
    """Keep the input's colour profile (colours would shift without it) and, for JPEG, a
    quality that does not soften the picture."""
    options: dict[str, object] = {}
    if icc_profile and image_format in _KEEPS_ICC:
        options["icc_profile"] = icc_profile
    if image_format == "JPEG":
        options["quality"] = JPEG_QUALITY
    return options


def process_file(src: str, dst: str, max_size: tuple[int, int], rotate_deg: float) -> Processed:
    """Read ``src``, transform it, write it to ``dst`` in the input's format, and hash the
    result. The file goes through a temporary name and an atomic rename, so a crash leaves
    no half-written file under the final name. A bad image raises ``ImageFailedError``
    (recorded, the run goes on); failing to write raises ``OSError`` (the output directory
    is unusable: the run stops)."""
    try:
        with Image.open(src) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ImageFailedError(f"{opened.width}x{opened.height} is too many pixels")
            image_format = opened.format or "PNG"
            icc_profile = opened.info.get("icc_profile")
            opened.load()
            image = transform(opened, max_size, rotate_deg)
        if image_format in _NEEDS_RGB and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        magic = perceptual_hash(image)
    except ImageFailedError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow reports undecodable data as OSError (UnidentifiedImageError is one),
        # ValueError or SyntaxError depending on the codec.
        raise ImageFailedError(f"{type(exc).__name__}: {exc}") from None
    partial = f"{dst}.partial"
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        image.save(partial, format=image_format, **_save_options(image_format, icc_profile))
        os.replace(partial, dst)
        with open(dst, "rb") as written:
            payload = written.read()
    except (ValueError, TypeError) as exc:  # the format cannot hold this mode
        raise ImageFailedError(f"cannot save as {image_format}: {exc}") from None
    except OSError as exc:
        if exc.errno is not None and stops_the_run(exc):  # full, read-only, failing disk
            raise
        # Another refusal (a name too long, a permission), or Pillow's encoder's (an
        # OSError without an errno, "cannot write mode ..."): this image's failure.
        raise ImageFailedError(f"cannot write the output: {exc}") from None
    mime = Image.MIME.get(image_format, "application/octet-stream")
    return Processed(image.width, image.height, magic, payload, mime)
