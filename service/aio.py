"""The bridge to asyncio-flavoured drivers (asyncpg, SQLAlchemy's asyncio layer)."""

from __future__ import annotations

from contextvars import Token
from typing import Any

import trio_asyncio

__all__ = ["use_loop"]


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
