"""Redaction rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

from service.platform.redact import MAX_VALUE_CHARS, redact_url, short_repr


def test_a_query_pair_without_equals_is_masked_as_a_whole() -> None:
    assert redact_url("http://h/x?token&a=1") == "http://h/x?***&a=***"


def test_a_value_whose_repr_raises_is_shown_by_its_type() -> None:
    # repr() of an int past 4300 digits raises ValueError (CPython's int-to-str limit).
    assert short_repr(10**5000) == "<int>"


def test_a_long_repr_is_cut_to_the_limit_with_an_ellipsis() -> None:
    text = short_repr(["x" * 100] * 3)  # reprlib bounds each item, not the whole
    assert len(text) == MAX_VALUE_CHARS
    assert text.endswith("x...")
