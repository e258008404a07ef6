"""The bridge to asyncio-flavoured drivers (asyncpg, SQLAlchemy's asyncio layer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from contextvars import Context, Token
from typing import Any, TypeVar

import trio_asyncio

from .fast_aio_loop import open_loop

__all__ = ["log_asyncio_error", "open_worker_loop", "run_isolated", "use_loop"]

logger = logging.getLogger("service.platform.aio")


@asynccontextmanager
async def open_worker_loop() -> AsyncIterator[Any]:
    """A worker's asyncio loop: trio-asyncio's, with fast_aio_loop.py's main loop, whose
    unhandled asyncio errors are logged (:func:`log_asyncio_error`).

    The app opens one per worker, before any capability starts, and every capability's
    asyncio work runs on it (the fan-out's sources, the application database); a tool or a
    test that runs without the app opens its own.
    """
    async with open_loop() as loop:
        loop.set_exception_handler(log_asyncio_error)
        yield loop


def log_asyncio_error(_loop: Any, context: dict[str, Any]) -> None:
    """The loop's exception handler: log an unhandled asyncio error.

    trio-asyncio's default handler raises every unhandled asyncio error into trio, which
    ends the loop and the worker: an "exception was never retrieved" left over by a
    cancelled asyncpg connect must not take the service down.
    """
    exception = context.get("exception")
    # asyncpg leaves this behind when a connection it was using is closed under it
    # (a cancelled connect, a terminated connection): expected, and already reported.
    expected = isinstance(exception, ConnectionError) and "connection_lost" in str(exception)
    (logger.debug if expected else logger.warning)(
        "asyncio: %s%s",
        context.get("message", "unhandled error"),
        f" ({type(exception).__name__}: {exception})" if exception is not None else "",
    )


class use_loop:
    """Make ``loop`` the current trio-asyncio loop of this task (and tasks it starts).

    trio-asyncio finds its loop through a ContextVar. A loop opened in the app's
    lifespan task is not in the context of request tasks, so triopg calls made from
    a request would fail with "'NoneType' object has no attribute
    'run_aio_coroutine'". Each source sets the loop it was built with instead.
    (A class rather than a generator-based context manager: it is on the hot path.)
    """

    __slots__ = ("_loop", "_token")

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = trio_asyncio.current_loop.set(self._loop)

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None
        trio_asyncio.current_loop.reset(self._token)
        self._token = None


T = TypeVar("T")


async def run_isolated(
    loop: Any,
    coro: Coroutine[Any, Any, T],
    *,
    on_done: Callable[[asyncio.Future[T]], object] | None = None,
) -> T:
    """Run an asyncio coroutine on ``loop`` from trio, in an empty context, and return its result.

    Like ``loop.run_aio_coroutine``, except for the context: an asyncio task copies
    the current one, and so would every timer it arms (asyncpg arms some). trio-asyncio
    keeps a cancelled timer until it would have fired, so a request's context (its
    request object, response and all) would stay alive that long: minutes, for
    asyncpg's pool, which leaked about 10 kB per query under load. Cancelling the
    calling trio scope cancels the task, as with ``run_aio_coroutine``. ``on_done`` is
    called with the task when it ends, even when it was cancelled before it started.
    """
    task = loop.create_task(coro, context=Context())
    if on_done is not None:
        task.add_done_callback(on_done)
    result: T = await trio_asyncio.run_aio_future(task)
    return result
