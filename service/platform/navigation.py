"""Every page's navigation: the product's name, a link to each capability's pages, and who
is logged in (with log-out) or where to log in.

The platform knows no capability: the app factory hands it the capabilities' entry points
(:func:`install_navigation`, the same list the index shows), and the capability that knows
users hands it a way to read this request's viewer (:func:`install_viewer`). Templates get
``product_name``, ``nav_links`` (the pages this viewer may open), ``viewer`` and
``log_in_links``; ``platform/_nav.html`` draws them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quart import current_app, g, has_request_context, request
from quart_trio import QuartTrio

from .capability import Audience, Entry

__all__ = [
    "PRODUCT_NAME",
    "Audience",
    "Entry",
    "Viewer",
    "current_viewer",
    "install_navigation",
    "install_viewer",
]

logger = logging.getLogger("service.platform.navigation")

#: The product's name: the brand of every page's navigation, the end of every page's title.
PRODUCT_NAME = "Switchyard"

_ENTRIES_KEY = "platform.navigation.entries"
_VIEWER_KEY = "platform.navigation.viewer"
_VIEWER_G = "platform_viewer"


@dataclass(frozen=True)
class Viewer:
    """The logged-in user, as the navigation shows them (the accounts capability says who)."""

    name: str
    profile_path: str
    is_admin: bool
    #: Where the navigation's log-out form posts, and its hidden fields (a CSRF token).
    logout_path: str
    logout_fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _ViewerSource:
    load: Callable[[], Awaitable[Viewer | None]]
    log_in_links: tuple[tuple[str, str], ...]


def install_navigation(app: QuartTrio, entries: Sequence[Entry]) -> None:
    """Give every template of ``app`` the navigation over ``entries`` (see the module)."""
    app.extensions[_ENTRIES_KEY] = tuple(entries)
    app.context_processor(_navigation)


def install_viewer(
    app: QuartTrio,
    load: Callable[[], Awaitable[Viewer | None]],
    *,
    log_in_links: Sequence[tuple[str, str]] = (),
) -> None:
    """Tell the platform how to read this request's viewer (``load``, in a request context;
    None: not logged in) and, as ``(path, label)`` pairs, where a visitor logs in."""
    app.extensions[_VIEWER_KEY] = _ViewerSource(load, tuple(log_in_links))


async def current_viewer() -> Viewer | None:
    """This request's logged-in viewer, or None: not logged in, no way to tell (nothing
    installed), or the way failed (logged: a page still renders, as anonymous)."""
    if _VIEWER_G in g:
        known: Viewer | None = g.get(_VIEWER_G)
        return known
    source: _ViewerSource | None = current_app.extensions.get(_VIEWER_KEY)
    viewer = None
    if source is not None:
        try:
            viewer = await source.load()
        except Exception:  # an error page must render even when the users cannot be read
            logger.exception("could not read the logged-in user for the navigation")
    setattr(g, _VIEWER_G, viewer)
    return viewer


async def _navigation() -> dict[str, Any]:
    entries: tuple[Entry, ...] = current_app.extensions.get(_ENTRIES_KEY, ())
    source: _ViewerSource | None = current_app.extensions.get(_VIEWER_KEY)
    viewer = await current_viewer() if has_request_context() else None
    path = request.path if has_request_context() else ""
    return {
        "product_name": PRODUCT_NAME,
        "viewer": viewer,
        "nav_links": [
            (entry, entry.active_on(path))
            for entry in entries
            if entry.page and entry.open_to(viewer)
        ],
        "log_in_links": source.log_in_links if source is not None else (),
    }
