"""Shared by several tests (from tests/platform/test_app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from quart_trio import QuartTrio

from service.app import create_app
from service.fanout.source import Source
from service.platform.settings import Settings


def app_with(*sources: Source, timeout_s: float = 2.0) -> QuartTrio:
    @asynccontextmanager
    async def open_sources(_settings: Settings) -> AsyncIterator[Sequence[Source]]:
        yield list(sources)

    settings = Settings.from_env({"SOURCE_TIMEOUT_S": str(timeout_s)})
    return create_app(settings, open_sources=open_sources)
