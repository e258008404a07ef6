from __future__ import annotations

from service.fanout.outcome import MAX_ERROR_CHARS, Outcome, SourceReport, server_timing_header


def test_server_timing_has_one_entry_per_source() -> None:
    header = server_timing_header(
        [
            SourceReport("data_1", Outcome.OK, 3.14159, rows=20),
            SourceReport("data_2", Outcome.TIMEOUT, 2000.4),
            SourceReport("data_3", Outcome.ERROR, 0.93, error_type="OSError"),
        ]
    )
    assert header == (
        'data_1;dur=3.1;desc="ok", data_2;dur=2000.4;desc="timeout", data_3;dur=0.9;desc="error"'
    )


def test_only_ok_is_not_failed() -> None:
    assert not SourceReport("s", Outcome.OK, 1.0).failed
    for outcome in (Outcome.TIMEOUT, Outcome.ERROR, Outcome.INVALID):
        assert SourceReport("s", outcome, 1.0).failed


def test_a_report_has_the_error_type_and_message() -> None:
    report = SourceReport.of("s", Outcome.ERROR, 1.0, error=ConnectionRefusedError("refused"))
    assert (report.error_type, report.error) == ("ConnectionRefusedError", "refused")
    assert SourceReport.of("s", Outcome.OK, 1.0, rows=3).error is None


def test_the_error_message_has_no_secret_from_a_url_or_dsn() -> None:
    error = OSError(
        "GET http://svc:s3cretPW@host/x?api_key=abc failed; "
        "also postgresql://app:dbpass@db:5432/orders?password=pgpw"
    )
    report = SourceReport.of("s", Outcome.ERROR, 1.0, error=error)
    assert report.error is not None
    for secret in ("s3cretPW", "abc", "dbpass", "pgpw"):
        assert secret not in report.error
    assert "http://host/x?api_key=***" in report.error
    assert "postgresql://db:5432/orders?password=***" in report.error


def test_a_huge_error_message_is_cut() -> None:
    report = SourceReport.of("s", Outcome.ERROR, 1.0, error=ValueError("x" * 200_000))
    assert report.error is not None
    assert len(report.error) <= MAX_ERROR_CHARS
    assert report.error.endswith("...")
    assert report.error.startswith("xxx")


def test_a_url_cut_by_the_bound_still_has_no_secret() -> None:
    # The message is redacted before it is cut, so a URL across the cut loses its password.
    message = "x" * (MAX_ERROR_CHARS - 20) + " http://svc:s3cretPW@host/x?api_key=abc"
    report = SourceReport.of("s", Outcome.ERROR, 1.0, error=ValueError(message))
    assert report.error is not None
    assert "s3cret" not in report.error
    assert len(report.error) <= MAX_ERROR_CHARS


def test_an_error_whose_str_raises_is_reported_by_its_type() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("hostile")

    report = SourceReport.of("s", Outcome.ERROR, 1.0, error=Hostile())
    assert report.error_type == "Hostile"
    assert report.error is not None
    assert "Hostile" in report.error
