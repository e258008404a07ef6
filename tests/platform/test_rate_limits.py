"""The rate limiter seam: its rules in memory, the same counters in Redis shared by several
limiters (as by several workers), and the fallback to each worker's memory while Redis is
away, logged once per outage."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import coredis
import pytest
import trio

from service.platform.rate_limits import Limit, MemoryRateLimiter, Rate
from service.platform.redis_rate_limits import RedisRateLimiter
from service.platform.response_cache import open_redis
from service.platform.settings import Settings, SettingsError
from tests.support.tcp_proxy import closed_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "limit", "window_s"),
    [("10/minute", 10, 60.0), (" 3 / Second ", 3, 1.0), ("100000/hour", 100_000, 3600.0)],
)
def test_a_rate_is_n_per_second_minute_or_hour(text: str, limit: int, window_s: float) -> None:
    assert Rate.parse(text, "X") == Rate(limit, window_s)


@pytest.mark.parametrize("text", ["", "10", "0/minute", "-1/minute", "10/day", "ten/minute", "1/m"])
def test_a_bad_rate_is_a_settings_error_naming_the_variable(text: str) -> None:
    with pytest.raises(SettingsError, match="REGISTER_RATE_LIMIT"):
        Settings.from_env({"REGISTER_RATE_LIMIT": text} if text else {"REGISTER_RATE_LIMIT": "x"})


def test_register_rate_limit_setting_and_its_default() -> None:
    assert Settings.from_env({}).register_rate_limit == Rate(10, 60.0)
    assert Settings.from_env({"REGISTER_RATE_LIMIT": "500/second"}).register_rate_limit == Rate(
        500, 1.0
    )


async def test_an_attempt_counts_on_every_key_or_on_none() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    tight, loose = Limit("tight", Rate(1, 10)), Limit("loose", Rate(5, 10))
    assert (await limiter.hit([tight, loose])).allowed
    clock.now += 4
    refused = await limiter.hit([tight, loose])  # tight is full: loose counts nothing
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(6)
    assert refused.retry_after_header == "6"
    for _ in range(4):
        assert (await limiter.hit([loose])).allowed
    assert not (await limiter.hit([loose])).allowed


async def test_an_attempt_taken_back_frees_its_place_and_forget_frees_all() -> None:
    limiter = MemoryRateLimiter(clock=Clock())
    limit = Limit("k", Rate(2, 60))
    first = await limiter.hit([limit])
    assert (await limiter.hit([limit])).allowed
    assert not (await limiter.hit([limit])).allowed
    assert first.attempt is not None
    await limiter.take_back(first.attempt, "k")
    assert (await limiter.hit([limit])).allowed
    await limiter.forget("k")
    assert (await limiter.hit([limit])).allowed


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    async with open_redis(redis_url) as client:
        yield client


async def test_limiters_on_one_redis_share_their_counters(redis: coredis.Redis[bytes]) -> None:
    """Two workers' limiters, 4 actors at once, 12 attempts on one key limited to 5: exactly
    5 pass (per worker in memory, 10 could)."""
    workers = [RedisRateLimiter(lambda: redis) for _ in range(2)]
    limit = Limit(f"test:{uuid.uuid4().hex}", Rate(5, 60))
    passed: list[bool] = []

    async def actor(n: int) -> None:
        for k in range(3):
            passed.append((await workers[(n + k) % 2].hit([limit])).allowed)

    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(actor, n)
    assert passed.count(True) == 5
    refused = await workers[0].hit([limit])
    assert 58 <= refused.retry_after_s <= 60
    assert all(not worker.degraded for worker in workers)


async def test_take_back_and_forget_reach_redis(redis: coredis.Redis[bytes]) -> None:
    one, other = RedisRateLimiter(lambda: redis), RedisRateLimiter(lambda: redis)
    key = f"test:{uuid.uuid4().hex}"
    limit = Limit(key, Rate(1, 60))
    verdict = await one.hit([limit])
    assert verdict.attempt is not None
    assert verdict.attempt.shared
    assert not (await other.hit([limit])).allowed
    await one.take_back(verdict.attempt, key)
    assert (await other.hit([limit])).allowed
    await one.forget(key)
    assert (await other.hit([limit])).allowed


async def test_redis_down_counts_per_worker_logs_once_and_recovers(
    redis: coredis.Redis[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """50 attempts while Redis is away: the worker's own counters decide, one log line; once
    Redis answers again (tried again 2 s after a failure), one line, and Redis counts."""
    clock = Clock()
    async with open_redis(f"redis://127.0.0.1:{closed_port()}") as dead:
        current = [dead]
        limiter = RedisRateLimiter(lambda: current[0], clock=clock)
        limit = Limit(f"test:{uuid.uuid4().hex}", Rate(5, 60))
        with caplog.at_level(logging.WARNING, "service.platform.redis_rate_limits"):
            verdicts = []
            for _ in range(50):
                verdicts.append(await limiter.hit([limit]))
                clock.now += 0.5  # Redis is asked again every 2 s: 12 more failures
            assert [v.allowed for v in verdicts].count(True) == 5  # the local counters
            assert all(v.attempt is None or not v.attempt.shared for v in verdicts)
            assert limiter.degraded
            down_lines = [r for r in caplog.records if "Redis failed" in r.getMessage()]
            assert len(down_lines) == 1
            current[0] = redis
            clock.now += 60  # the local counts have aged out too
            back = await limiter.hit([limit])
            assert back.attempt is not None
            assert back.attempt.shared
            assert not limiter.degraded
            assert sum("answers again" in r.getMessage() for r in caplog.records) == 1
        assert len(caplog.records) == 2
