"""Log-in failures: limited per email and per client over a sliding window."""

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


def test_an_email_is_blocked_after_its_failures_until_they_age_out() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_email=3, per_client=100, window_s=60, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("a@x.io", "c1")
        throttle.failed("A@X.IO", "c1")  # emails compare case-insensitively
    assert throttle.blocked("a@x.io", "c2")  # from any client
    assert not throttle.blocked("b@x.io", "c1")
    clock.now += 59.9
    assert throttle.blocked("a@x.io", "c1")
    clock.now += 0.1
    assert not throttle.blocked("a@x.io", "c1")


def test_a_client_is_blocked_after_its_failures_on_any_emails() -> None:
    throttle = LoginThrottle(per_email=100, per_client=2, window_s=60, clock=Clock())
    throttle.failed("a@x.io", "c1")
    throttle.failed("b@x.io", "c1")
    assert throttle.blocked("c@x.io", "c1")
    assert not throttle.blocked("c@x.io", "c2")


def test_a_success_clears_the_emails_failures_but_not_the_clients() -> None:
    throttle = LoginThrottle(per_email=2, per_client=3, window_s=60, clock=Clock())
    throttle.failed("a@x.io", "c1")
    throttle.failed("a@x.io", "c1")
    assert throttle.blocked("a@x.io", "c9")
    throttle.succeeded("A@x.io")
    assert not throttle.blocked("a@x.io", "c9")
    throttle.failed("b@x.io", "c1")
    assert throttle.blocked("z@x.io", "c1")  # the client's three failures remain


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
