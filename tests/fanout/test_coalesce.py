"""Request coalescing (COALESCE_REQUESTS): concurrent reads share the fan-out in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from service.app import create_app
from service.fanout.coalesce import Coalescer
from service.fanout.gather import FanoutResult, gather
from service.fanout.source import FakeSource, Source
from service.platform.settings import Settings, SettingsError

ROWS = [{"id": 1, "name": "Test 1"}]


async def test_callers_during_a_flight_share_it(autojump_clock: trio.testing.MockClock) -> None:
    source = FakeSource("s", ROWS, delay_s=1.0)
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(lambda started: gather([source], 2.0, started=started), nursery)
        got: list[tuple[FanoutResult, bool]] = []

        async def call(after_s: float) -> None:
            await trio.sleep(after_s)
            got.append(await coalescer.read(trio.current_time()))

        for after_s in (0.0, 0.2, 0.9):
            nursery.start_soon(call, after_s)
    assert source.calls == 1
    assert sorted(shared for _, shared in got) == [False, True, True]
    assert all(result is got[0][0] for result, _ in got)


async def test_a_caller_after_the_flight_starts_a_new_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = FakeSource("s", ROWS, delay_s=0.5)
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(lambda started: gather([source], 2.0, started=started), nursery)
        _, first_shared = await coalescer.read(trio.current_time())
        _, second_shared = await coalescer.read(trio.current_time())
    assert source.calls == 2
    assert (first_shared, second_shared) == (False, False)


async def test_the_caller_that_started_it_leaving_does_not_cancel_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = FakeSource("s", ROWS, delay_s=1.0)
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(lambda started: gather([source], 2.0, started=started), nursery)
        results: list[FanoutResult] = []

        async def patient() -> None:
            await trio.sleep(0.1)
            result, _ = await coalescer.read(trio.current_time())
            results.append(result)

        nursery.start_soon(patient)
        with trio.move_on_after(0.5):  # the client that started the read disconnects
            await coalescer.read(trio.current_time())
    assert source.cancelled == 0
    assert [result.rows for result in results] == [ROWS]


async def test_joined_caller_is_answered_before_its_own_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hung = FakeSource("hung", ROWS, delay_s=60.0)
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(lambda started: gather([hung], 2.0, started=started), nursery)
        finished: list[float] = []

        async def call(after_s: float) -> None:
            await trio.sleep(after_s)
            arrived = trio.current_time()
            await coalescer.read(trio.current_time())
            finished.append(trio.current_time() - arrived)

        nursery.start_soon(call, 0.0)
        nursery.start_soon(call, 1.5)
    assert sorted(finished) == pytest.approx([0.5, 2.0])


async def test_a_new_flight_counts_its_deadline_from_the_first_callers_arrival(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The caller arrived 0.3 s before the flight could start (a busy worker): it is still
    answered by its own deadline, not 2 s after the flight's task began."""
    hung = FakeSource("hung", ROWS, delay_s=60.0)
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(lambda started: gather([hung], 2.0, started=started), nursery)
        called = trio.current_time()
        result, _ = await coalescer.read(called - 0.3)
    assert trio.current_time() - called == pytest.approx(1.7)
    assert [report.elapsed_ms for report in result.reports] == pytest.approx([2000.0])


async def test_a_failed_flight_fails_each_of_its_callers_and_the_next_caller_starts_anew(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []

    async def read(started: float) -> FanoutResult:
        attempts.append(started)
        await trio.sleep(0.5)
        if len(attempts) == 1:
            raise ValueError("boom")
        return FanoutResult(rows=[], reports=[])

    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(read, nursery)

        async def call(after_s: float) -> None:
            await trio.sleep(after_s)
            try:
                await coalescer.read(trio.current_time())
            except RuntimeError as exc:
                errors.append(exc)

        nursery.start_soon(call, 0.0)
        nursery.start_soon(call, 0.1)
    assert [str(exc) for exc in errors] == ["the shared fan-out failed"] * 2
    assert all(isinstance(exc.__cause__, ValueError) for exc in errors)
    async with trio.open_nursery() as nursery:
        coalescer = Coalescer(read, nursery)
        result, shared = await coalescer.read(trio.current_time())
    assert (result.rows, shared, len(attempts)) == ([], False, 2)


async def test_callers_of_a_flight_cut_short_by_shutdown_get_an_error_not_a_hang(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = FakeSource("s", ROWS, delay_s=10.0)
    errors: list[str] = []
    async with trio.open_nursery() as callers, trio.open_nursery() as app_nursery:
        coalescer = Coalescer(lambda started: gather([source], 20.0, started=started), app_nursery)

        async def call() -> None:
            try:
                await coalescer.read(trio.current_time())
            except RuntimeError as exc:
                errors.append(str(exc))

        callers.start_soon(call)
        callers.start_soon(call)
        await trio.sleep(1.0)
        app_nursery.cancel_scope.cancel()  # the app's nursery closes: shutdown
    assert errors == ["the shared fan-out failed"] * 2
    assert trio.current_time() < 2.0


def app_with(source: Source, **env: str) -> Any:
    @asynccontextmanager
    async def open_sources(_settings: Settings) -> AsyncIterator[Sequence[Source]]:
        yield [source]

    return create_app(Settings.from_env(env), open_sources=open_sources)


@pytest.mark.parametrize(("flag", "calls"), [("1", 1), ("0", 3)])
async def test_app_coalesces_only_when_asked(
    autojump_clock: trio.testing.MockClock, flag: str, calls: int
) -> None:
    source = FakeSource("s", ROWS, delay_s=1.0)
    app = app_with(source, COALESCE_REQUESTS=flag)
    timings: list[str] = []
    async with app.test_app() as test_app, trio.open_nursery() as nursery:

        async def get() -> None:
            response = await test_app.test_client().get("/data")
            assert orjson.loads(await response.get_data()) == ROWS
            timings.append(response.headers["Server-Timing"])

        for _ in range(3):
            nursery.start_soon(get)
    assert source.calls == calls
    shared = sum('coalesced;desc="shared"' in timing for timing in timings)
    assert shared == 3 - calls
    assert all(timing.startswith('s;dur=1000.0;desc="ok"') for timing in timings)


def test_coalescing_is_off_by_default_and_the_flag_is_checked() -> None:
    assert Settings.from_env({}).coalesce_requests is False
    assert Settings.from_env({"COALESCE_REQUESTS": "on"}).coalesce_requests is True
    with pytest.raises(SettingsError, match="COALESCE_REQUESTS"):
        Settings.from_env({"COALESCE_REQUESTS": "sometimes"})
