"""The one place that reaches into triopg: asyncpg's pool, created on a trio-asyncio loop.

The raw-SQL sources drive asyncpg's pool directly (see pg_pool.py: one loop crossing per
query, releases that never make a request wait). triopg creates that pool on the
trio-asyncio loop, but has no public way to hand it out, and its ``__aexit__`` would close
it gracefully inside an unbounded shield. So this module enters triopg's pool proxy by hand
and takes the asyncpg pool from the private attribute where triopg 0.6 keeps it
(``_asyncpg_pool``). pyproject.toml pins triopg to the tested range; should another
triopg keep the pool elsewhere, :func:`create_asyncpg_pool` refuses to go on and says which
triopg it found (tests/platform/test_triopg_adapter.py checks the installed one).
"""

from __future__ import annotations

import contextlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import asyncpg
import triopg

from .aio import use_loop

__all__ = ["TESTED_TRIOPG", "TriopgChangedError", "create_asyncpg_pool", "triopg_version"]

#: The triopg versions this module was tested with (as pinned in pyproject.toml).
TESTED_TRIOPG = ">=0.6,<0.7"


class TriopgChangedError(RuntimeError):
    """The installed triopg does not hand over asyncpg's pool as this module expects."""


def triopg_version() -> str:
    """The installed triopg's version, for error messages."""
    try:
        return version("triopg")
    except PackageNotFoundError:
        return str(getattr(triopg, "__version__", "unknown"))


async def create_asyncpg_pool(dsn: str, loop: Any, **kwargs: Any) -> asyncpg.Pool[Any]:
    """``asyncpg.create_pool(dsn, **kwargs)``, created on the trio-asyncio ``loop`` through triopg.

    The caller owns the pool and ends it with ``terminate()`` (a graceful close would
    wait on the servers). Raises :class:`TriopgChangedError`, naming the installed
    triopg, when triopg no longer keeps an ``asyncpg.Pool`` where version 0.6 does.
    """
    proxy = triopg.create_pool(dsn, **kwargs)
    with use_loop(loop):
        await proxy.__aenter__()
    pool = getattr(proxy, "_asyncpg_pool", None)
    if not isinstance(pool, asyncpg.Pool):
        # Whatever triopg opened, close it without waiting, then say what changed.
        with contextlib.suppress(Exception):
            proxy.terminate()
        raise TriopgChangedError(
            f"triopg {triopg_version()} does not keep asyncpg's pool in _asyncpg_pool"
            f" (found {type(pool).__name__}); service.triopg_adapter was written for"
            f" triopg{TESTED_TRIOPG}"
        )
    return pool
