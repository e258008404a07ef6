"""Small generated images for the task API's tests (each a few hundred bytes)."""

from __future__ import annotations

import base64
import io

from PIL import Image

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")


def image_bytes(
    kind: str = "PNG", size: tuple[int, int] = (8, 6), color: str | tuple[int, int, int] = "red"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=kind)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
