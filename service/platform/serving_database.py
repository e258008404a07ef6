"""A capability's application database for as long as the app serves: opened in the app's
nursery when serving starts, with a nursery of its own for the capability's background
tasks, both closed when serving stops (the background tasks cancelled first)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import trio
from quart import Blueprint, current_app
from quart_trio import QuartTrio

from .database import Database, open_database

__all__ = ["OnOpen", "keep_database_open"]

#: Called once the database is open: set up the capability's state, start its background
#: tasks in the nursery given.
OnOpen = Callable[[Database, trio.Nursery], Awaitable[None]]


def keep_database_open(
    blueprint: Blueprint,
    database_url: str | None,
    *,
    user: str,
    on_open: OnOpen,
    on_close: Callable[[], None],
) -> None:
    """While the app serves, keep ``database_url`` open for ``blueprint``'s capability.

    Without a URL nothing is opened (the capability answers 503). ``on_close`` runs first
    when serving stops (drop the state, so no new request uses the database), then the
    background tasks are cancelled and the database closes.
    """
    stopping, closed = trio.Event(), trio.Event()
    opened = False

    async def keep_open(*, task_status: trio.TaskStatus[None]) -> None:
        assert database_url is not None
        try:
            async with (
                open_database(database_url, user=user) as database,
                trio.open_nursery() as nursery,
            ):
                await on_open(database, nursery)
                task_status.started()
                await stopping.wait()
                nursery.cancel_scope.cancel()
        finally:
            closed.set()

    @blueprint.before_app_serving
    async def open_it() -> None:
        nonlocal stopping, closed, opened
        if database_url is None:
            return
        stopping, closed = trio.Event(), trio.Event()
        await cast(QuartTrio, current_app).nursery.start(keep_open)
        opened = True

    @blueprint.after_app_serving
    async def close_it() -> None:
        nonlocal opened
        if not opened:
            return
        opened = False
        on_close()
        stopping.set()
        await closed.wait()
