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


def noisy_bytes(
    kind: str, size: tuple[int, int] = (64, 48), frames: int = 1, **options: object
) -> bytes:
    """An image of random pixels (so every part of the file matters to the decode); with
    ``frames`` > 1, an animation or a multi-page file."""
    import os

    pictures = [
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) for _ in range(frames)
    ]
    buffer = io.BytesIO()
    if frames > 1:
        options = {"save_all": True, "append_images": pictures[1:], **options}
    pictures[0].save(buffer, format=kind, **options)
    return buffer.getvalue()


#: Each format's own closing bytes, which a cut-short file may have appended to pass for
#: whole: JPEG's EOI marker, PNG's IEND chunk, GIF's trailer (the others have none).
END_MARKERS = {
    "JPEG": b"\xff\xd9",
    "MPO": b"\xff\xd9",
    "PNG": b"\x00\x00\x00\x00IEND\xaeB`\x82",
    "GIF": b"\x3b",
}


def many_frames_gif(frames: int) -> bytes:
    """A GIF of ``frames`` frames of 1x1 pixel, written block by block (Pillow would take
    minutes): 15 bytes a frame, 4.5 MB for 300,000."""
    import struct

    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    # An image descriptor at (0, 0), 1x1, no local palette; LZW code size 2 and one
    # sub-block of 2 bytes: the codes clear, 0, end; the block terminator.
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * frames + b"\x3b"


def many_scans_jpeg(size: int, scans: int) -> bytes:
    """A progressive JPEG of ``size`` x ``size`` white pixels whose last scan (an AC
    refinement of one component: a few bytes, one end-of-band run) is repeated until the
    picture has ``scans`` scans; libjpeg passes over every block again for each one (only
    warning that the progression is bogus), ~30 ns a block."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "white").save(buffer, format="JPEG", progressive=True)
    data = buffer.getvalue()
    return repeat_last_scan(data, scans - data.count(b"\xff\xda"))


def repeat_last_scan(data: bytes, times: int) -> bytes:
    """``data`` (a JPEG, or an MPO whose last picture is progressive) with the last scan of
    its last picture repeated ``times`` more times."""
    import re

    last = data.rfind(b"\xff\xda")
    end = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]").search(data, last + 2)
    assert end is not None
    scan = data[last : end.start()]
    assert len(scan) < 64, "the last scan should be one end-of-band run"
    return data[: end.start()] + scan * times + data[end.start() :]
