"""The bridge to asyncio-flavoured drivers (asyncpg, SQLAlchemy's asyncio layer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio_asyncio

__all__ = ["use_loop"]


@contextmanager
def use_loop(loop: Any) -> Iterator[None]:
    """Make ``loop`` the current trio-asyncio loop of this task (and tasks it starts).

    trio-asyncio finds its loop through a ContextVar. A loop opened in the app's
    lifespan task is not in the context of request tasks, so triopg calls made from
    a request would fail with "'NoneType' object has no attribute
    'run_aio_coroutine'". Each source sets the loop it was built with instead.
    """
    token = trio_asyncio.current_loop.set(loop)
    try:
        yield
    finally:
        trio_asyncio.current_loop.reset(token)
