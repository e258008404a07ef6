"""A ``Range`` header read as RFC 9110 §14 says, for one representation of known length.

Pure: the header and the length in, what to send out. Three answers:
- ``None``: send the whole body (``200``): no header, one that does not parse, a unit other
  than ``bytes``, a range whose last position is before its first, or more than one range
  (a server may ignore ``Range``, §14.2; one part of several would need
  ``multipart/byteranges``, which an image client never asks for);
- :class:`ByteRange`: send that part (``206``), a last position past the end clamped to
  it, a suffix range (``-500``, the last 500 bytes) resolved;
- :data:`UNSATISFIABLE`: ``416`` with ``Content-Range: bytes */<length>``: the first
  position is at or past the end, or a suffix of 0 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["UNSATISFIABLE", "ByteRange", "parse_range"]


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` up to ``stop`` (exclusive) of ``length``."""

    start: int
    stop: int
    length: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{self.length}"

    @property
    def size(self) -> int:
        return self.stop - self.start


UNSATISFIABLE: Final = "unsatisfiable"


def parse_range(header: str | None, length: int) -> ByteRange | Literal["unsatisfiable"] | None:
    """What to send for ``Range: <header>`` of a body of ``length`` bytes (see the module)."""
    if header is None:
        return None
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # the list syntax allows empty elements
    if len(specs) != 1:
        return None
    first, dash, last = specs[0].partition("-")
    if not dash or not _digits(last, allow_empty=True) or not _digits(first, allow_empty=True):
        return None
    if not first:  # a suffix range: the last <last> bytes
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or length == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, length - suffix), length, length)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, so the header is ignored (§14.1.1)
    if start >= length:
        return UNSATISFIABLE
    stop = length if not last else min(int(last) + 1, length)
    return ByteRange(start, stop, length)


def _digits(text: str, *, allow_empty: bool) -> bool:
    if not text:
        return allow_empty
    return text.isascii() and text.isdigit()
