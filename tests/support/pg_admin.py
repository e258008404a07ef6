"""Shared by several tests (from tests/system/test_faults.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio_asyncio
import triopg

from service.platform.aio import use_loop


@asynccontextmanager
async def admin(dsn: str) -> AsyncIterator[Any]:
    """A session of our own on the real server, to tamper with the victim's table."""
    async with trio_asyncio.open_loop() as loop:
        with use_loop(loop):
            async with triopg.connect(dsn) as conn:
                yield conn
