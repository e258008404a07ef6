"""A JPEG's scans counted and its restart markers checked by walking its markers, without
decoding a pixel.

A progressive JPEG may repeat a scan: each one makes libjpeg pass over every block of the
picture again, but a scan of a plain picture is a few bytes (one end-of-band run), so 5,000
of them fit in 100 KB and take libjpeg 10 s or more. libjpeg has no limit of its own (only
its tools and the TurboJPEG API have one), so the scans are counted here first, as
:mod:`~service.tasks.gif_blocks` counts a GIF's frames: the walk stops at the first scan
past the limit.

The walk also finds a scan whose restart intervals stop early. libjpeg meeting a marker
where a restart marker (``RSTn``) should be fills the picture's remaining intervals with
grey, and with a warning only (which Pillow drops): a file cut right before a restart
marker, with ``FF D9`` appended, decodes "whole". A scan's intervals are known from its
frame header and the restart interval (``DRI``), so a scan with fewer restart markers than
that is cut short.

The walk reads the markers as libjpeg does (bytes before a marker are skipped, ``FF`` fill
bytes too; a scan's data ends at the first marker other than ``RSTn``), from a picture's
``SOI`` to its ``EOI``. Anything it cannot follow (a segment running past the end, no
``EOI``) ends the walk quietly: Pillow's decoder judges such files. Pure: bytes in, a count
or an exception out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_SCANS",
    "JpegCutShortError",
    "TooManyScansError",
    "count_jpeg_scans",
]

#: Real progressive JPEGs have about 10 scans (libjpeg's default script has 10, mozjpeg's
#: a few more); libjpeg-turbo's tools refuse past a limit of their own as well.
DEFAULT_MAX_SCANS = 100

#: A marker: ``FF`` then neither ``00`` (a stuffed byte) nor ``FF`` (fill); the match ends
#: at the marker's code.
_MARKER = re.compile(rb"\xff[^\x00\xff]")
#: The end of a scan's entropy-coded data: a marker other than a restart marker.
_SCAN_END = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
_RESTARTS = tuple(bytes((0xFF, code)) for code in range(0xD0, 0xD8))
_RESTART = re.compile(rb"\xff+[\xd0-\xd7]")
#: Two restart markers with nothing but fill bytes between them.
_EMPTY_INTERVAL = re.compile(rb"\xff[\xd0-\xd7]\xff+[\xd0-\xd7]")

_SOI, _EOI, _SOS, _DRI, _TEM = 0xD8, 0xD9, 0xDA, 0xDD, 0x01
#: Frame headers of the DCT processes libjpeg decodes: baseline, extended and progressive,
#: Huffman (C0-C2) or arithmetic (C9, CA) coded. Their MCUs are blocks of 8x8.
_DCT_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC9, 0xCA})
#: Every other frame header (lossless, hierarchical): no restart check for them.
_OTHER_FRAMES = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF})
_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2})


class TooManyScansError(ValueError):
    """More scans than allowed in one picture (the walk stopped at the first one too many)."""


class JpegCutShortError(ValueError):
    """The picture stops early: a scan has fewer restart markers than its restart intervals
    need, or an interval without a byte of data, or some coefficients are coded by no scan
    (a progressive JPEG cut between two scans)."""


@dataclass(frozen=True, slots=True)
class _Frame:
    width: int
    height: int
    #: Component id -> (horizontal, vertical) sampling factors.
    sampling: dict[int, tuple[int, int]]
    dct: bool
    #: Huffman coded (not arithmetic): every MCU takes at least one bit.
    huffman: bool

    def mcus(self, components: list[int]) -> int | None:
        """MCUs of a scan of ``components`` (as libjpeg's ``jdinput.c`` counts them); None
        if the frame cannot say (no height yet, an unknown component, not DCT)."""
        if not self.dct or self.width == 0 or self.height == 0:
            return None
        if not components or any(c not in self.sampling for c in components):
            return None
        h_max = max(h for h, _ in self.sampling.values())
        v_max = max(v for _, v in self.sampling.values())
        if h_max == 0 or v_max == 0:
            return None
        if len(components) == 1:  # non-interleaved: one block per MCU
            h, v = self.sampling[components[0]]
            return _ceil(self.width * h, 8 * h_max) * _ceil(self.height * v, 8 * v_max)
        return _ceil(self.width, 8 * h_max) * _ceil(self.height, 8 * v_max)


def count_jpeg_scans(data: bytes, *, max_scans: int, start: int = 0) -> int:
    """The scans of the picture starting at ``start`` (its ``SOI``), at most ``max_scans``:
    :class:`TooManyScansError` at the first scan past it, :class:`JpegCutShortError`
    if a scan is cut short at a restart interval (see :func:`_check_intervals`)."""
    if data[start : start + 2] != b"\xff\xd8":
        return 0
    position = start + 2
    frame: _Frame | None = None
    coded: dict[int, list[int]] = {}
    interval = 0
    scans = 0
    while True:
        found = _MARKER.search(data, position)
        if found is None:
            return scans  # no EOI: cut short, which the decoder finds
        code = data[found.end() - 1]
        position = found.end()
        if code == _EOI:
            if frame is not None and frame.dct:
                _check_coded(frame, coded)
            return scans
        if code in (_SOI, _TEM) or 0xD0 <= code <= 0xD7:
            continue  # no length; libjpeg ignores a stray restart marker
        if position + 2 > len(data):
            return scans
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > len(data):
            return scans
        segment = data[position + 2 : position + length]
        position += length
        if code in _DCT_FRAMES or code in _OTHER_FRAMES:
            frame = _frame(segment, code)
            coded = {component: [_NOT_CODED] * 64 for component in frame.sampling} if frame else {}
        elif code == _DRI and len(segment) >= 2:
            interval = int.from_bytes(segment[:2], "big")
        elif code == _SOS:
            scans += 1
            if scans > max_scans:
                raise TooManyScansError(f"more than {max_scans} scans")
            end = _SCAN_END.search(data, position)
            if end is None:
                return scans
            if frame is not None:
                _check_intervals(data, position, end.start(), frame, segment, interval)
                _record_coded(segment, coded)
            position = end.start()


def _frame(segment: bytes, code: int) -> _Frame | None:
    """A frame header (``SOFn``): precision, height, width, then three bytes a component."""
    if len(segment) < 6:
        return None
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    count = segment[5]
    if len(segment) < 6 + 3 * count:
        return None
    sampling = {}
    for index in range(count):
        component, factors = segment[6 + 3 * index], segment[7 + 3 * index]
        sampling[component] = (factors >> 4, factors & 0x0F)
    return _Frame(width, height, sampling, code in _DCT_FRAMES, code in _HUFFMAN_FRAMES)


def _check_intervals(
    data: bytes, start: int, end: int, frame: _Frame, header: bytes, interval: int
) -> None:
    """The scan's entropy-coded data, ``data[start:end]``, holds each of its intervals
    (all its MCUs, or ``interval`` MCUs each with a restart interval): a restart marker
    between each two, and, Huffman coded, at least a byte in each (every MCU takes a code of
    a bit or more; an arithmetic coder may leave out the zero bytes that end an interval).
    A file cut right after a restart marker has all the markers its data needs but an
    empty last interval, which libjpeg fills with grey."""
    if not header:
        return
    count = header[0]
    components = [header[1 + 2 * index] for index in range(count) if 1 + 2 * index < len(header)]
    mcus = frame.mcus(components)
    if mcus is None:
        return
    needed = _ceil(mcus, interval) - 1 if interval else 0
    present = sum(data.count(marker, start, end) for marker in _RESTARTS) if interval else 0
    if present < needed:
        raise JpegCutShortError(
            f"a scan has {present} restart markers of the {needed} its intervals need"
        )
    if not frame.huffman:
        return
    empty = (
        start == end
        or (interval and _RESTART.match(data, start) is not None)
        or (interval and _EMPTY_INTERVAL.search(data, start, end) is not None)
        or (present == needed and _RESTART.fullmatch(data, max(start, end - 2), end) is not None)
    )
    if empty:
        raise JpegCutShortError("a scan has an interval without data")


#: A coefficient no scan has coded yet (else: the lowest bit coded so far, 0 when whole).
_NOT_CODED = 99


def _record_coded(header: bytes, coded: dict[int, list[int]]) -> None:
    """Note the coefficients the scan of ``header`` codes, down to which bit: ``Ss`` to
    ``Se`` of its components, their bits down to ``Al`` (a sequential scan: all 64, every
    bit)."""
    count = header[0] if header else 0
    if len(header) < 4 + 2 * count:
        return
    first, last, approximation = header[1 + 2 * count : 4 + 2 * count]
    low_bit = approximation & 0x0F
    for index in range(count):
        bits = coded.get(header[1 + 2 * index])
        if bits is None:
            continue
        for coefficient in range(first, min(last, 63) + 1):
            bits[coefficient] = min(bits[coefficient], low_bit)


def _check_coded(frame: _Frame, coded: dict[int, list[int]]) -> None:
    """At the picture's EOI, every coefficient of every component is coded to its last bit.
    A progressive JPEG cut between two scans is a whole JPEG of fewer scans, which libjpeg
    decodes without a word; the standard lets an encoder leave bits out, but no encoder's
    script does (libjpeg's, mozjpeg's code every bit), so such a picture is taken as cut."""
    for component, bits in coded.items():
        missing = [index for index, bit in enumerate(bits) if bit != 0]
        if missing:
            raise JpegCutShortError(
                f"component {component}: {len(missing)} coefficients not coded to their last"
                " bit (a progressive JPEG cut between two scans)"
            )


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
