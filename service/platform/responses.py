"""Answers shared by every capability: JSON bodies, and whether a client wants HTML."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Request, Response, current_app

__all__ = ["JSON_PATHS_KEY", "json_response", "wants_html"]

#: The app's config key of the path prefixes whose clients are programs (their errors are
#: always JSON): each capability names its own (``Capability.json_paths``).
JSON_PATHS_KEY = "SERVICE_JSON_PATHS"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response encoded with orjson."""
    return Response(
        orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


def wants_html(request: Request) -> bool:
    """True for a browser: it asks for ``text/html`` and not for JSON, on a page path.

    JSON clients (``/data``, ``/api/...``, or ``Accept: application/json``) always get
    JSON errors; so does a client that states no preference (``*/*``, curl, httpx).
    """
    if request.path.startswith(current_app.config.get(JSON_PATHS_KEY, ())):
        return False
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"] and "text/html" in accept.values()
