"""Answers shared by every capability: JSON bodies, and whether a client wants HTML."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Request, Response

__all__ = ["json_response", "wants_html"]

#: Paths whose clients are programs: their errors are always JSON.
JSON_PATHS = ("/data", "/ready", "/health", "/demo/", "/api/")


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
    if request.path.startswith(JSON_PATHS):
        return False
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"] and "text/html" in accept.values()
