"""The one reader of JSON request bodies, for every JSON route of every capability: the same
decoding, the same limits and the same error answers everywhere.

The body is decoded by orjson from the raw bytes, never by the request's own ``get_json``
(the standard library's decoder: it accepts lone surrogates such as ``"\\ud800"``, which no
database or password hasher can encode, and recurses until Python's stack runs out). orjson
refuses, as a ``400 invalid`` naming the problem and where it is: a body that is not UTF-8,
a lone surrogate, ``NaN`` or an infinite number, nesting deeper than 1,024 levels, an empty
body. The size is bounded before: the request's body limit (``body_limits``) answers 413.

quart-schema's ``validate_request`` is not used: it reads with ``get_json`` and answers in
its own error shape. Routes declare their body with ``document_request`` (for the OpenAPI
document) and check the decoded value themselves.
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import request

from .api_routes import ApiError, api_error

__all__ = ["read_json", "read_json_object"]


async def read_json() -> Any:
    """The request's JSON document: ``415`` unless it says ``application/json``, ``400``
    unless its body is one JSON document in UTF-8 (see the module's notes)."""
    if not request.is_json:
        raise ApiError(
            api_error("unsupported_media_type", "send Content-Type: application/json", 415)
        )
    raw = await request.get_data(as_text=False)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(api_error("invalid", f"the body is not valid JSON: {exc}", 400)) from None


async def read_json_object() -> dict[str, Any]:
    """The request's JSON object (as :func:`read_json`; ``400`` for any other JSON value)."""
    body = await read_json()
    if not isinstance(body, dict):
        raise ApiError(api_error("invalid", "the body must be a JSON object", 400))
    return body
