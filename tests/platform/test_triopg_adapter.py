"""The triopg adapter: the installed triopg still hands over asyncpg's pool, or we say so."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import trio_asyncio
import triopg
from packaging.requirements import Requirement

from service.platform.aio import run_isolated
from service.platform.triopg_adapter import (
    TESTED_TRIOPG,
    TriopgChangedError,
    create_asyncpg_pool,
    triopg_version,
)
from tests.support import ROOT

#: min_size=0: asyncpg opens no connection until one is asked for, so nothing listens here.
NOWHERE = "postgresql://postgres@127.0.0.1:1/postgres"


@pytest.fixture
async def loop() -> AsyncIterator[Any]:
    async with trio_asyncio.open_loop() as loop:
        yield loop


async def test_installed_triopg_hands_over_an_asyncpg_pool(loop: Any) -> None:
    # A triopg that keeps the pool elsewhere fails here with TriopgChangedError, naming itself.
    pool = await create_asyncpg_pool(NOWHERE, loop, min_size=0, max_size=1)
    try:
        assert isinstance(pool, asyncpg.Pool), f"triopg {triopg_version()}"
    finally:
        pool.terminate()


@pytest.mark.integration
async def test_the_pool_runs_queries_on_the_given_loop(loop: Any, pg_dsn: str) -> None:
    pool = await create_asyncpg_pool(pg_dsn, loop, min_size=0, max_size=1)
    try:
        assert await run_isolated(loop, pool.fetchval("SELECT 41 + 1")) == 42
    finally:
        pool.terminate()


class _ChangedProxy:
    """A triopg pool proxy that keeps asyncpg's pool under another name (or not at all)."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)
        self.terminated = False

    async def __aenter__(self) -> _ChangedProxy:
        return self

    def terminate(self) -> None:
        self.terminated = True


@pytest.mark.parametrize(
    "attributes",
    [{"_pool": object()}, {"_asyncpg_pool": object()}],
    ids=["attribute-gone", "not-an-asyncpg-pool"],
)
async def test_a_changed_triopg_is_refused_with_its_version(
    loop: Any, monkeypatch: pytest.MonkeyPatch, attributes: dict[str, Any]
) -> None:
    proxy = _ChangedProxy(**attributes)
    monkeypatch.setattr(triopg, "create_pool", lambda *_args, **_kwargs: proxy)
    with pytest.raises(
        TriopgChangedError, match=rf"^triopg {re.escape(triopg_version())} "
    ) as raised:
        await create_asyncpg_pool(NOWHERE, loop, min_size=0)
    assert "_asyncpg_pool" in str(raised.value)
    assert proxy.terminated  # whatever it opened is not left behind


def test_the_version_named_is_the_installed_one() -> None:
    assert triopg_version() == triopg.__version__


def test_triopg_is_pinned_to_the_tested_range_and_installed_within_it() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [pin] = [Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("triopg")]
    assert pin.specifier == Requirement(f"triopg{TESTED_TRIOPG}").specifier
    assert pin.specifier.contains(triopg_version()), (
        f"triopg {triopg_version()} is installed; service.triopg_adapter is tested with"
        f" triopg{TESTED_TRIOPG}"
    )
