"""The one way to call a Redis that may be away: bounded calls, a pause after a failure,
and the callers told of the first failure of an outage and of the recovery."""

from __future__ import annotations

import coredis
import pytest
import trio
import trio.testing

from service.platform.redis_guard import (
    REDIS_TIMEOUT_S,
    RETRY_AFTER_S,
    RedisGuard,
    RedisUnavailable,
)


class Events:
    def __init__(self) -> None:
        self.failures: list[tuple[str, bool]] = []
        self.recoveries = 0

    def failed(self, exc: BaseException, first: bool) -> None:
        self.failures.append((type(exc).__name__, first))

    def recovered(self) -> None:
        self.recoveries += 1


def guard_with(events: Events) -> RedisGuard:
    return RedisGuard(
        on_failure=events.failed, on_recovery=events.recovered, clock=trio.current_time
    )


async def answer() -> str:
    return "PONG"


async def refuse() -> str:
    raise coredis.exceptions.ConnectionError("refused")


async def hang() -> str:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


async def test_an_answer_passes_through_and_nothing_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = Events()
    guard = guard_with(events)
    assert await guard.call(answer) == "PONG"
    assert (events.failures, events.recoveries, guard.down) == ([], 0, False)


async def test_a_hung_redis_costs_one_timeout_then_is_left_alone_for_a_while(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = Events()
    guard = guard_with(events)
    started = trio.current_time()
    with pytest.raises(RedisUnavailable) as failed:
        await guard.call(hang)
    assert trio.current_time() - started == pytest.approx(REDIS_TIMEOUT_S)
    assert isinstance(failed.value.cause, trio.TooSlowError)
    asked: list[str] = []

    async def counted() -> str:
        asked.append("asked")
        return "PONG"

    # Within the pause: not asked at all, and at once.
    await trio.sleep(RETRY_AFTER_S - 0.1)
    before = trio.current_time()
    with pytest.raises(RedisUnavailable) as skipped:
        await guard.call(counted)
    assert skipped.value.cause is None
    assert (asked, trio.current_time()) == ([], before)
    # After it: asked again, and the recovery is told once.
    await trio.sleep(0.2)
    assert await guard.call(counted) == "PONG"
    assert asked == ["asked"]
    assert events.failures == [("TooSlowError", True)]
    assert events.recoveries == 1
    assert not guard.down


async def test_only_the_first_failure_of_an_outage_is_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = Events()
    guard = guard_with(events)
    for _ in range(3):
        with pytest.raises(RedisUnavailable):
            await guard.call(refuse)
        assert guard.down
        await trio.sleep(RETRY_AFTER_S)
    assert await guard.call(answer) == "PONG"
    with pytest.raises(RedisUnavailable):
        await guard.call(refuse)
    assert events.failures == [("ConnectionError", f) for f in (True, False, False, True)]
    assert events.recoveries == 1


async def test_an_error_that_is_not_redis_s_is_raised_as_it_is(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def broken() -> str:
        raise TypeError("a bug in the caller")

    events = Events()
    guard = guard_with(events)
    with pytest.raises(TypeError):
        await guard.call(broken)
    assert (events.failures, guard.down, guard.skipping()) == ([], False, False)
