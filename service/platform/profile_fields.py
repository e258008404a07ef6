"""Fields that capabilities add to a user's profile (``GET /api/me/``), without the profile's
owner knowing them: a capability registers a provider, the profile merges what each gives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from flask.sansio.app import App
from quart import current_app

__all__ = ["ProfileFields", "add_profile_fields", "profile_fields"]

#: A user id -> this capability's fields of that user's profile.
ProfileFields = Callable[[int], Awaitable[Mapping[str, Any]]]

_KEY = "platform.profile_fields"


def add_profile_fields(app: App, provider: ProfileFields) -> None:
    """Register ``provider`` on ``app`` (at start-up, e.g. in a blueprint's ``record_once``)."""
    app.extensions.setdefault(_KEY, []).append(provider)


async def profile_fields(user_id: int) -> dict[str, Any]:
    """Every registered provider's fields of ``user_id``, merged in registration order."""
    merged: dict[str, Any] = {}
    for provider in current_app.extensions.get(_KEY, []):
        merged.update(await provider(user_id))
    return merged
