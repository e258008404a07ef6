"""Report rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

from service.fanout.outcome import MAX_ERROR_CHARS, Outcome, SourceReport


def test_a_report_without_rows_or_error_has_none() -> None:
    report = SourceReport.of("a", Outcome.TIMEOUT, 1.0)
    assert (report.rows, report.error_type, report.error) == (0, None, None)


def test_a_message_of_exactly_the_limit_is_kept_whole() -> None:
    message = "x" * MAX_ERROR_CHARS
    assert SourceReport.of("a", Outcome.ERROR, 1.0, error=ValueError(message)).error == message


def test_a_longer_message_is_cut_to_the_limit_with_an_ellipsis() -> None:
    report = SourceReport.of("a", Outcome.ERROR, 1.0, error=ValueError("x" * 1000))
    assert report.error == "x" * (MAX_ERROR_CHARS - 3) + "..."
