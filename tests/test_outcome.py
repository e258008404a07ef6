from __future__ import annotations

from service.outcome import Outcome, SourceReport, server_timing_header


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
