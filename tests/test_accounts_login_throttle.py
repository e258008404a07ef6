"""Log-in attempts: limited per email and per client over a sliding window."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.accounts.login_throttle import LoginThrottle
from service.platform.secret_key import ensure_secret_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_email_is_refused_after_its_failures_until_they_age_out() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_email=3, per_client=100, window_s=60, clock=clock)
    for _ in range(3):
        assert throttle.attempt("A@X.IO", "c1")  # emails compare case-insensitively
    assert not throttle.attempt("a@x.io", "c2")  # from any client
    assert throttle.attempt("b@x.io", "c1")
    clock.now += 59.9
    assert not throttle.attempt("a@x.io", "c1")
    clock.now += 0.1
    assert throttle.attempt("a@x.io", "c1")


def test_attempts_in_flight_count_before_they_fail() -> None:
    """Requests sent at once cannot all pass the check before any of them has failed."""
    throttle = LoginThrottle(per_email=5, per_client=100, window_s=60, clock=Clock())
    started = [throttle.attempt("a@x.io", "c1") for _ in range(30)]
    assert started.count(True) == 5


def test_a_client_is_refused_after_its_failures_on_any_emails() -> None:
    throttle = LoginThrottle(per_email=100, per_client=2, window_s=60, clock=Clock())
    assert throttle.attempt("a@x.io", "c1")
    assert throttle.attempt("b@x.io", "c1")
    assert not throttle.attempt("c@x.io", "c1")
    assert throttle.attempt("c@x.io", "c2")


def test_a_success_is_taken_back_for_the_email_and_the_client() -> None:
    throttle = LoginThrottle(per_email=2, per_client=2, window_s=60, clock=Clock())
    for _ in range(10):  # right every time: never refused
        assert throttle.attempt("a@x.io", "c1")
        throttle.succeeded("A@x.io", "c1")
    assert throttle.attempt("a@x.io", "c1")
    assert throttle.attempt("a@x.io", "c1")
    assert not throttle.attempt("a@x.io", "c1")


def test_memory_stays_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_email=1, per_client=1000, window_s=60, max_keys=50, clock=clock)
    for index in range(200):
        throttle.attempt(f"user{index}@x.io", "c1")
    assert len(throttle) <= 50
    refused = LoginThrottle(per_email=1, per_client=1, window_s=60, clock=clock)
    refused.attempt("a@x.io", "c1")
    for index in range(100):  # refused attempts remember nothing new
        assert not refused.attempt(f"other{index}@x.io", "c1")
    assert len(refused) == 2
    clock.now += 61
    assert refused.attempt("z@x.io", "c9")
    assert len(refused) == 4  # aged-out keys were dropped when looked at, then z and c9


def test_a_configured_secret_key_wins(tmp_path: Path) -> None:
    assert ensure_secret_key("configured", tmp_path) == "configured"
    assert not (tmp_path / "secret_key").exists()


def test_a_generated_secret_key_is_kept_private_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    first = ensure_secret_key(None, data_dir)
    assert len(first) >= 40
    assert "SECRET_KEY is not set" in caplog.text
    assert (data_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    assert ensure_secret_key(None, data_dir) == first  # sessions survive a restart


def test_an_empty_secret_key_file_is_an_error_not_a_key_per_worker(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ValueError, match="empty"):
        ensure_secret_key(None, tmp_path)
