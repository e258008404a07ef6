"""``Range`` headers read as RFC 9110 §14 says (the pure part; over HTTP: test_tasks_http)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.tasks.byte_ranges import UNSATISFIABLE, ByteRange, parse_range

N = 102
#: More digits than ``int()`` converts (4,300).
HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", ByteRange(0, 10, N)),
        ("bytes=10-", ByteRange(10, N, N)),
        ("bytes=-5", ByteRange(N - 5, N, N)),
        ("bytes=0-99999", ByteRange(0, N, N)),  # clamped to the end
        ("bytes=-500", ByteRange(0, N, N)),  # a suffix longer than the body: all of it
        ("bytes=101-101", ByteRange(101, 102, N)),
        ("Bytes = 3-4", ByteRange(3, 5, N)),  # the unit is case-insensitive
        ("bytes=3-4,", ByteRange(3, 5, N)),  # empty list elements are allowed
        ("bytes=102-", UNSATISFIABLE),
        ("bytes=500-600", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        (None, None),
        ("", None),
        ("bytes", None),
        ("bytes=", None),
        ("bytes=-", None),
        ("bytes=abc", None),
        ("bytes=1-x", None),
        ("bytes=5-2", None),  # last before first: invalid, so ignored
        ("bytes=+1-2", None),
        ("bytes=\uff11-\uff12", None),  # non-ASCII digits
        ("items=0-5", None),
        ("bytes=0-1,4-5", None),  # several ranges: the whole body (documented)
        # Positions past every length, too long for int(): read, never a ValueError.
        (f"bytes={HUGE}-", UNSATISFIABLE),
        (f"bytes={HUGE}-{HUGE}", UNSATISFIABLE),
        (f"bytes=0-{HUGE}", ByteRange(0, N, N)),  # clamped to the end
        (f"bytes=-{HUGE}", ByteRange(0, N, N)),  # a suffix longer than the body
        (f"bytes={HUGE}-{HUGE[1:]}", None),  # last before first, both huge
        (f"bytes=1{HUGE}-{HUGE}", None),
        (f"bytes={'0' * 5000}5-{'0' * 5000}9", ByteRange(5, 10, N)),  # leading zeros
    ],
    ids=lambda value: (
        re.sub("[0-9]{20,}", lambda run: f"<{len(run[0])} digits>", value)
        if isinstance(value, str)
        else None
    ),
)
def test_each_kind_of_range(header: str | None, expected: object) -> None:
    assert parse_range(header, N) == expected


def test_content_range_names_the_last_byte_and_the_length() -> None:
    assert ByteRange(0, 10, N).content_range == "bytes 0-9/102"
    assert ByteRange(97, 102, N).size == 5


@given(st.text(max_size=40), st.integers(min_value=1, max_value=10_000))
def test_any_header_gives_a_range_inside_the_body_or_none(header: str, length: int) -> None:
    answer = parse_range(header, length)
    if isinstance(answer, ByteRange):
        assert 0 <= answer.start < answer.stop <= length == answer.length


@given(
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=1, max_value=200),
)
def test_an_int_range_is_clamped_or_unsatisfiable(first: int, last: int, length: int) -> None:
    answer = parse_range(f"bytes={first}-{last}", length)
    if last < first:
        assert answer is None
    elif first >= length:
        assert answer == UNSATISFIABLE
    else:
        assert answer == ByteRange(first, min(last + 1, length), length)
