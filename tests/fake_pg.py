"""A mock of a triopg connection, for unit tests of the pool and the raw-SQL source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio
import trio.lowlevel


class FakeConnection:
    """Answers ``fetch`` with fixed rows after an optional delay, or raises ``error``."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]] = (),
        *,
        delay_s: float = 0.0,
        error: BaseException | None = None,
    ) -> None:
        self.rows = list(rows)
        self.delay_s = delay_s
        self.error = error
        self.queries: list[str] = []
        self.terminated = False

    async def fetch(self, query: str) -> list[dict[str, Any]]:
        self.queries.append(query)
        await trio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return list(self.rows)

    async def fetchval(self, query: str) -> int:
        self.queries.append(query)
        await trio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return 1

    def terminate(self) -> None:
        self.terminated = True

    def is_closed(self) -> bool:
        return self.terminated


class FakeConnector:
    """Hands out FakeConnections made by ``factory``, and remembers them."""

    def __init__(self, **connection_kwargs: Any) -> None:
        self.connection_kwargs = connection_kwargs
        self.opened: list[FakeConnection] = []

    async def __call__(self) -> FakeConnection:
        await trio.lowlevel.checkpoint()
        conn = FakeConnection(**self.connection_kwargs)
        self.opened.append(conn)
        return conn
