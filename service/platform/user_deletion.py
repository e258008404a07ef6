"""What other capabilities do when a user is deleted, without the accounts knowing them: a
capability registers a listener (the tasks remove the user's image files), and the
accounts call :func:`user_deleted` once the user's row is gone, on every path that deletes
a user (the web page, the API). The database's cascades take the rows; listeners take
what lives outside the database."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from flask.sansio.app import App
from quart import current_app

__all__ = ["UserDeletedListener", "on_user_deleted", "user_deleted"]

logger = logging.getLogger("service.platform.user_deletion")

#: A deleted user's id -> done (it must not raise: what it leaves, the start-up sweeps take).
UserDeletedListener = Callable[[int], Awaitable[None]]

_KEY = "platform.user_deleted"


def on_user_deleted(app: App, listener: UserDeletedListener) -> None:
    """Register ``listener`` on ``app`` (at start-up, e.g. in a blueprint's ``record_once``)."""
    app.extensions.setdefault(_KEY, []).append(listener)


async def user_deleted(user_id: int) -> None:
    """Tell every listener, in registration order, that ``user_id`` is deleted (committed).
    One listener's failure is logged and does not keep the others from running."""
    for listener in current_app.extensions.get(_KEY, []):
        try:
            await listener(user_id)
        except Exception:
            logger.exception("a listener failed after user %d was deleted", user_id)
