"""platform/lifespan.py: what the app holds open while it serves, opened in order and closed
in the reverse order, as nested blocks, also when the app's nursery is cancelled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from quart import Blueprint
from quart_trio import QuartTrio

from service.platform.lifespan import WhileServing, background_tasks, hold_while_serving

Events = list[str]


def recording(name: str, events: Events, *, slow_close_s: float = 0.0) -> Any:
    """An opener whose context manager records its open and close; its close takes
    ``slow_close_s`` (shielded: it must finish even when cancelled)."""

    @asynccontextmanager
    async def manager() -> AsyncIterator[str]:
        events.append(f"open {name}")
        try:
            yield name
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(slow_close_s)
            events.append(f"close {name}")

    return manager


def app_holding(events: Events) -> tuple[QuartTrio, list[WhileServing[str]]]:
    """An app with two holds of its own and two of a blueprint, registered after them."""
    app = QuartTrio(__name__)
    first = hold_while_serving(app, recording("loop", events, slow_close_s=0.02), name="loop")
    second = hold_while_serving(
        app, recording("database", events, slow_close_s=0.02), name="database"
    )
    blueprint = Blueprint("capability", __name__)
    third = hold_while_serving(blueprint, recording("store", events, slow_close_s=0.02), name="s")

    @asynccontextmanager
    async def needs_both() -> AsyncIterator[str]:
        # Opened after the platform's holds: it finds them open, and they outlive it.
        events.append(f"sees {first.get()} and {second.get()}")
        try:
            yield "worker"
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.02)
            events.append(f"at close {first()} and {second()} are open")

    fourth = hold_while_serving(blueprint, needs_both, name="needs both")
    app.register_blueprint(blueprint)
    return app, [first, second, third, fourth]


async def test_holds_open_in_order_and_close_in_reverse_order() -> None:
    events: Events = []
    app, held = app_holding(events)
    assert [h() for h in held] == [None] * 4
    async with app.test_app():
        assert [h() for h in held] == ["loop", "database", "store", "worker"]
    assert events == [
        "open loop",
        "open database",
        "open store",
        "sees loop and database",
        "at close loop and database are open",
        "close store",
        "close database",
        "close loop",
    ]
    assert [h() for h in held] == [None] * 4
    with pytest.raises(RuntimeError, match="loop is not open"):
        held[0].get()


async def test_a_cancelled_app_still_closes_them_as_nested_blocks() -> None:
    """The app's nursery cancelled while it serves (quart-trio's deadline when serving stops,
    a test's server cancelled): each hold still closes before the ones it was opened after.
    (With a task per hold, all were cancelled at once: the loop closed while the database
    still closed on it.)"""
    events: Events = []
    app, _held = app_holding(events)
    started = trio.Event()

    async def asgi_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    send, receive = trio.open_memory_channel[dict[str, Any]](1)
    async with trio.open_nursery() as nursery:
        scope = {"type": "lifespan", "asgi": {"spec_version": "2.0"}}
        lifespan: Any = app  # the ASGI callable, with loosely typed events
        nursery.start_soon(lifespan, scope, receive.receive, asgi_send)
        await send.send({"type": "lifespan.startup"})
        await started.wait()
        nursery.cancel_scope.cancel()  # no lifespan.shutdown: cancelled outright
    assert events[-4:] == [
        "at close loop and database are open",
        "close store",
        "close database",
        "close loop",
    ]


async def test_an_opener_may_open_nothing() -> None:
    events: Events = []
    app = QuartTrio(__name__)
    nothing: WhileServing[str] = hold_while_serving(app, lambda: None, name="nothing")
    something = hold_while_serving(app, recording("something", events), name="something")
    async with app.test_app():
        assert (nothing(), something()) == (None, "something")
    assert events == ["open something", "close something"]


async def test_a_close_that_hangs_is_cancelled_after_its_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []
    app = QuartTrio(__name__)
    hold_while_serving(app, recording("outer", events), name="outer")

    @asynccontextmanager
    async def hangs() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await trio.sleep_forever()  # cancelled after close_timeout_s

    hold_while_serving(app, hangs, name="the hung one", close_timeout_s=3.0)
    async with app.test_app():
        began = trio.current_time()
    assert trio.current_time() - began == pytest.approx(3.0)
    assert events == ["open outer", "close outer"]
    assert "closing the hung one took over 3.0 s: cancelled" in caplog.text


async def test_background_tasks_are_cancelled_when_the_block_exits() -> None:
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.append(name)

    with trio.fail_after(1):
        async with background_tasks() as nursery:
            nursery.start_soon(forever, "a")
            nursery.start_soon(forever, "b")
            await trio.sleep(0.01)
    assert sorted(ended) == ["a", "b"]
