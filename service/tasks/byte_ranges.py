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

A position may have any number of digits (``1*DIGIT``). One past every length (more than
18 digits, leading zeros aside) is not given to ``int()``, which refuses more than 4,300
digits: such a first position is past the end (``416``), such a last position or suffix
reaches the end.
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
        suffix = _position(last)
        if suffix == 0 or length == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, length - suffix), length, length)
    if last and _before(last, first):
        return None  # invalid, so the header is ignored (§14.1.1)
    start = _position(first)
    if start >= length:
        return UNSATISFIABLE
    stop = length if not last else min(_position(last) + 1, length)
    return ByteRange(start, stop, length)


#: The digits of a position read as a number, at most; a longer one is past every length
#: (a representation's length is far below 10**18 bytes).
_MAX_DIGITS = 18
_PAST_EVERY_LENGTH = 10**_MAX_DIGITS


def _significant(digits: str) -> str:
    return digits.lstrip("0") or "0"


def _position(digits: str) -> int:
    """The value of ``digits``, or :data:`_PAST_EVERY_LENGTH` for any number above it."""
    significant = _significant(digits)
    return int(significant) if len(significant) <= _MAX_DIGITS else _PAST_EVERY_LENGTH


def _before(digits: str, other: str) -> bool:
    """``digits`` is a smaller number than ``other``, however many digits either has."""
    a, b = _significant(digits), _significant(other)
    return (len(a), a) < (len(b), b)


def _digits(text: str, *, allow_empty: bool) -> bool:
    if not text:
        return allow_empty
    return text.isascii() and text.isdigit()
