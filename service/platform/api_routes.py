"""What every JSON API blueprint shares: the error body ``{"error", "detail"}``, an
exception that answers with it, and routes that work with and without a trailing slash."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Response
from quart.typing import ResponseReturnValue

from .responses import json_response

__all__ = ["ApiError", "api_error", "api_route"]


def api_error(
    code: str, detail: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The APIs' error body: ``{"error": "<code>", "detail": "..."}``; a ``401`` also says
    how to authenticate (``WWW-Authenticate: Bearer``)."""
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="api"', **(headers or {})}
    return json_response({"error": code, "detail": detail}, status, headers)


class ApiError(Exception):
    """Raised in a view made with :func:`api_route`: its ``response`` is the answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def api_route(
    blueprint: Blueprint, path: str, methods: list[str]
) -> Callable[[Callable[..., Awaitable[ResponseReturnValue]]], Any]:
    """Register the decorated view at ``path`` and at ``path`` without its trailing slash;
    an :class:`ApiError` it raises becomes its response."""

    def register(view: Callable[..., Awaitable[ResponseReturnValue]]) -> Any:
        async def guarded(**kwargs: Any) -> ResponseReturnValue:
            try:
                return await view(**kwargs)
            except ApiError as failed:
                return failed.response

        functools.update_wrapper(guarded, view)  # the OpenAPI attributes come along
        blueprint.add_url_rule(path, view_func=guarded, methods=methods)
        blueprint.add_url_rule(
            path.rstrip("/"), view_func=guarded, methods=methods, endpoint=view.__name__ + "_"
        )
        return guarded

    return register
