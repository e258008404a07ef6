"""What the app holds open while it serves: the one way, for the platform and every capability.

:func:`hold_while_serving` enters an async context manager when the app starts serving and
exits it when serving stops, in a task of the app's nursery (a context manager that opens a
nursery, as trio-asyncio's loop does, must be entered and exited in one task: not across a
``while_serving`` generator's ``yield``). What it holds is opened in the order the holds were
made, and closed in the reverse order, after the requests, like nested ``async with`` blocks:
the platform holds the worker's asyncio loop, its application database and its Redis client
before any capability starts, so each capability finds them open when it opens, and they
close after it has closed.

:func:`background_tasks` is the nursery for a held resource's background tasks: they are
cancelled (not awaited) when the block exits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import trio
from quart import Blueprint
from quart_trio import QuartTrio

__all__ = ["Opener", "WhileServing", "background_tasks", "hold_while_serving"]

logger = logging.getLogger("service.platform.lifespan")

T = TypeVar("T")

#: Called when serving starts: the context manager to hold open, or None for nothing (a
#: capability without its configuration). It may read what earlier holds opened.
Opener = Callable[[], AbstractAsyncContextManager[T] | None]

_HOLDS_KEY = "service.platform.lifespan"


class WhileServing(Generic[T]):
    """What a context manager held open while the app serves gave: calling the holder returns
    it, ``None`` before serving starts, once it stops, and when nothing was opened."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._value: T | None = None

    def __call__(self) -> T | None:
        return self._value

    def get(self) -> T:
        """The value; RuntimeError while it is not open (a programming error: a hold made
        after the one that needs it, or a use outside serving)."""
        if self._value is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._value


@dataclass(frozen=True, slots=True)
class _Hold(Generic[T]):
    held: WhileServing[T]
    opener: Opener[T]
    close_timeout_s: float | None

    async def enter(self, stack: AsyncExitStack) -> None:
        manager = self.opener()
        if manager is None:
            return
        scope = trio.CancelScope()  # for close_timeout_s
        stack.callback(self._closed, scope)  # unwinding runs these in the reverse order
        stack.enter_context(scope)
        self.held._value = await stack.enter_async_context(manager)
        stack.callback(self._closing, scope)

    def _closing(self, scope: trio.CancelScope) -> None:
        self.held._value = None  # no new user from here on
        if self.close_timeout_s is not None:
            scope.deadline = trio.current_time() + self.close_timeout_s

    def _closed(self, scope: trio.CancelScope) -> None:
        if scope.cancelled_caught:
            logger.warning(
                "closing %s took over %.1f s: cancelled", self.held.name, self.close_timeout_s
            )


class _Holds:
    """An app's holds, in the order they were made: entered in that order, in one task of
    the app's nursery, and exited in the reverse order by the same task.

    One task for all of them, not one each: a context manager exits in the task that
    entered it, so only one task can nest them. With a task each, the app nursery's
    cancellation (quart-trio's deadline when serving stops, or a test server cancelled)
    cancelled them all at once, and the loop could close under a database still closing.
    """

    def __init__(self) -> None:
        self.holds: list[_Hold[Any]] = []
        self._stopping = trio.Event()
        self._closed = trio.Event()
        self._running = False

    async def open_all(self, nursery: trio.Nursery) -> None:
        self._stopping, self._closed = trio.Event(), trio.Event()
        await nursery.start(self._hold_all)
        self._running = True

    async def close_all(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopping.set()
        await self._closed.wait()

    async def _hold_all(self, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                for hold in self.holds:
                    await hold.enter(stack)
                task_status.started()
                await self._stopping.wait()
        finally:
            for hold in self.holds:
                hold.held._value = None
            self._closed.set()


def hold_while_serving(
    target: QuartTrio | Blueprint,
    opener: Opener[T],
    *,
    name: str,
    close_timeout_s: float | None = None,
) -> WhileServing[T]:
    """Hold ``opener()``'s context manager open while the app of ``target`` serves.

    On a blueprint, the hold is made when the blueprint is registered. Every hold of an app
    opens where its first hold was made, among the app's ``before_serving`` functions (the
    platform's holds are made first: before any capability's code runs), and closes, after
    the requests, in ``after_serving``. The context manager's own code after its ``yield``
    runs first when it closes: drop the capability's state there. ``close_timeout_s``
    bounds the close: past it the context manager is cancelled (its clean-up then runs
    cancelled).
    """
    held: WhileServing[T] = WhileServing(name)
    hold = _Hold(held, opener, close_timeout_s)
    if isinstance(target, Blueprint):
        target.record_once(lambda setup: _install(cast(QuartTrio, setup.app), hold))
    else:
        _install(target, hold)
    return held


def _install(app: QuartTrio, hold: _Hold[Any]) -> None:
    holds = app.extensions.get(_HOLDS_KEY)
    if holds is None:
        holds = app.extensions[_HOLDS_KEY] = _Holds()
        opening: _Holds = holds

        @app.before_serving
        async def open_held() -> None:
            await opening.open_all(app.nursery)

        app.after_serving(holds.close_all)
    holds.holds.append(hold)


@asynccontextmanager
async def background_tasks() -> AsyncIterator[trio.Nursery]:
    """A nursery whose tasks are cancelled when the block exits, however it exits."""
    async with trio.open_nursery() as nursery:
        try:
            yield nursery
        finally:
            nursery.cancel_scope.cancel()
