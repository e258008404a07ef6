"""Coalescing rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from service.fanout.coalesce import Coalescer


async def test_a_failed_flight_is_logged_with_its_traceback(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def read(started: float) -> int:
        raise ValueError("boom")

    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(read, nursery)
        with pytest.raises(RuntimeError):
            await coalescer.read(trio.current_time())
    (record,) = caplog.records
    assert record.getMessage() == "shared fan-out failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


async def test_a_flight_cut_short_by_shutdown_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def read(started: float) -> int:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    causes: list[BaseException | None] = []
    async with trio.open_nursery() as callers, trio.open_nursery() as app_nursery:
        coalescer = Coalescer(read, app_nursery)

        async def call() -> None:
            try:
                await coalescer.read(trio.current_time())
            except RuntimeError as exc:
                causes.append(exc.__cause__)

        callers.start_soon(call)
        await trio.testing.wait_all_tasks_blocked()
        app_nursery.cancel_scope.cancel()
    assert [str(cause) for cause in causes] == ["the shared fan-out was cancelled (shutdown)"]
