"""Rate-limited warnings: the first is logged, repeats are counted, one line per interval."""

from __future__ import annotations

from service.platform.log_throttle import LogThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_line_of_a_key_passes_then_repeats_are_held_back_until_the_interval_passed() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.admit("a") == 0
    clock.now += 3
    assert throttle.admit("a") is None
    assert throttle.admit("a") is None
    clock.now += 6.9
    assert throttle.admit("a") is None
    clock.now += 0.1  # exactly 10 s after the last line
    assert throttle.admit("a") == 3
    assert throttle.admit("a") is None


def test_keys_are_throttled_independently() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.admit(("s1", "timeout")) == 0
    assert throttle.admit(("s2", "timeout")) == 0
    assert throttle.admit(("s1", "error")) == 0
    assert throttle.admit(("s1", "timeout")) is None
