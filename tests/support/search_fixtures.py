"""Helpers of the search's tests: the fake API on a real port, an app on the fake."""

from __future__ import annotations

import functools
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

from service.app import create_app
from service.platform.settings import Settings
from service.search.fake_api import FakeApiState, serve_fake_api

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
QUESTION_LINK = re.compile(r'<td><a href="https://[^"]+/questions/(\d+)/')


@asynccontextmanager
async def running_fake_api(
    state: FakeApiState | None = None,
) -> AsyncIterator[tuple[str, FakeApiState]]:
    """The fake API on 127.0.0.1 (a free port): its URL and its state."""
    state = state or FakeApiState()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_fake_api, state)
        yield url, state
        nursery.cancel_scope.cancel()


@contextmanager
def fake_api_process() -> Iterator[str]:
    """The fake API in a process of its own (for a service process's tests): its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "service.search.fake_api", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert "fake Stack Exchange API on" in line, line
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def write_ini(path: Path, api_url: str, **sections: dict[str, object]) -> Path:
    """A search.ini on ``api_url`` with ``sections``' keys added or replaced."""
    values: dict[str, dict[str, object]] = {
        "api": {"url": api_url, "timeout_s": 5, "page_size": 100, "max_backoff_wait_s": 5},
        # A key prefix of its own: the tests share one Redis (the session's valkey).
        "cache": {"ttl_s": 60, "key_prefix": f"test-{uuid.uuid4().hex}"},
        "refresh": {"interval_s": 600},
    }
    for section, keys in sections.items():
        values.setdefault(section, {}).update(keys)
    lines = []
    for section, keys in values.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in keys.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def search_app(dsn: str | None, ini: Path, **env: str) -> QuartTrio:
    @asynccontextmanager
    async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
        yield []

    settings = Settings.from_env(
        {
            **({"DATABASE_URL": dsn} if dsn else {}),
            "SECRET_KEY": "test-key-" + "x" * 32,
            "SEARCH_CONFIG": str(ini),
            **env,
        }
    )
    return create_app(settings, open_sources=no_sources)


def question_ids(page: str) -> list[int]:
    """The question ids of a results page's rows, in order."""
    return [int(found) for found in QUESTION_LINK.findall(page)]


@asynccontextmanager
async def serving(app: QuartTrio) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` served by hypercorn on 127.0.0.1 (a free port), and a client of it that asks
    for HTML (quart's test client stalls on bodies over ~80 KiB: a page of 100 rows is near)."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(functools.partial(serve, app, config))
        async with httpx.AsyncClient(base_url=binds[0], headers=BROWSER, timeout=30) as client:
            yield client
        nursery.cancel_scope.cancel()
