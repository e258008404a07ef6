"""Admission-control rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from service.fanout.admission import AdmissionControl, OverloadedError


def test_negative_settings_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match=r"^limit, max_queue and max_wait_s must be >= 0$"):
        AdmissionControl(-1, max_queue=0, max_wait_s=0)


async def test_a_shed_request_says_why_and_when_to_retry_and_is_counted() -> None:
    control = AdmissionControl(1, max_queue=0, max_wait_s=1.0)
    errors: list[OverloadedError] = []
    async with control.admit():
        for _ in range(2):
            with pytest.raises(OverloadedError) as caught:
                async with control.admit():
                    pass
            errors.append(caught.value)
    assert [(str(e), e.reason, e.retry_after_s) for e in errors] == [
        ("the queue is full", "the queue is full", 1)
    ] * 2
    assert control.shed_total == 2


async def test_a_request_admitted_from_the_queue_is_counted_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    control = AdmissionControl(1, max_queue=1, max_wait_s=1.0)

    async def queued() -> None:
        async with control.admit():
            pass

    async with trio.open_nursery() as nursery, control.admit():
        nursery.start_soon(queued)
        await trio.testing.wait_all_tasks_blocked()
        assert control.queued == 1
    assert control.admitted_total == 2
    assert control.in_flight == 0
