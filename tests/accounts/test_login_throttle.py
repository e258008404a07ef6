"""Log-in and registration attempts: limited per email and per client over a sliding window."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.accounts.login_throttle import LoginThrottle
from service.platform.rate_limits import MemoryRateLimiter, Rate
from service.platform.secret_key import ensure_secret_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle_of(
    clock: Clock, *, per_email: int, per_client: int, max_keys: int = 100_000
) -> LoginThrottle:
    limiter = MemoryRateLimiter(max_keys=max_keys, clock=clock)
    return LoginThrottle(limiter, per_email=per_email, per_client=per_client, window_s=60)


async def allowed(throttle: LoginThrottle, email: str, client: str) -> bool:
    return (await throttle.attempt(email, client)).allowed


async def test_an_email_is_refused_after_its_failures_until_they_age_out() -> None:
    clock = Clock()
    throttle = throttle_of(clock, per_email=3, per_client=100)
    for _ in range(3):
        assert await allowed(throttle, "A@X.IO", "c1")  # emails compare case-insensitively
    refused = await throttle.attempt("a@x.io", "c2")  # from any client
    assert not refused.allowed
    assert refused.retry_after_header == "60"
    assert await allowed(throttle, "b@x.io", "c1")
    clock.now += 59.9
    assert not await allowed(throttle, "a@x.io", "c1")
    clock.now += 0.1
    assert await allowed(throttle, "a@x.io", "c1")


async def test_attempts_in_flight_count_before_they_fail() -> None:
    """Requests sent at once cannot all pass the check before any of them has failed."""
    throttle = throttle_of(Clock(), per_email=5, per_client=100)
    started = [await allowed(throttle, "a@x.io", "c1") for _ in range(30)]
    assert started.count(True) == 5


async def test_a_client_is_refused_after_its_failures_on_any_emails() -> None:
    throttle = throttle_of(Clock(), per_email=100, per_client=2)
    assert await allowed(throttle, "a@x.io", "c1")
    assert await allowed(throttle, "b@x.io", "c1")
    assert not await allowed(throttle, "c@x.io", "c1")
    assert await allowed(throttle, "c@x.io", "c2")


async def test_a_success_is_taken_back_for_the_email_and_the_client() -> None:
    throttle = throttle_of(Clock(), per_email=2, per_client=2)
    for _ in range(10):  # right every time: never refused
        verdict = await throttle.attempt("a@x.io", "c1")
        assert verdict.allowed
        await throttle.succeeded("A@x.io", "c1", verdict)
    assert await allowed(throttle, "a@x.io", "c1")
    assert await allowed(throttle, "a@x.io", "c1")
    assert not await allowed(throttle, "a@x.io", "c1")


async def test_registrations_are_limited_per_client() -> None:
    clock = Clock()
    throttle = LoginThrottle(MemoryRateLimiter(clock=clock), register=Rate.parse("3/minute", "x"))
    assert [(await throttle.register("c1")).allowed for _ in range(4)] == [True] * 3 + [False]
    assert (await throttle.register("c2")).allowed
    clock.now += 60
    assert (await throttle.register("c1")).allowed


async def test_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(max_keys=50, clock=clock)
    throttle = LoginThrottle(limiter, per_email=1, per_client=1000, window_s=60)
    for index in range(200):
        await throttle.attempt(f"user{index}@x.io", "c1")
    assert len(limiter) <= 50
    refused_limiter = MemoryRateLimiter(clock=clock)
    refused = LoginThrottle(refused_limiter, per_email=1, per_client=1, window_s=60)
    await refused.attempt("a@x.io", "c1")
    for index in range(100):  # refused attempts remember nothing new
        assert not await allowed(refused, f"other{index}@x.io", "c1")
    assert len(refused_limiter) == 2
    clock.now += 61
    assert await allowed(refused, "z@x.io", "c9")
    assert len(refused_limiter) == 4  # aged-out keys were dropped when looked at, then z and c9


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
