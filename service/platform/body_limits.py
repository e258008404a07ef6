"""Request body limits per route: most endpoints take small bodies (``MAX_CONTENT_LENGTH``),
a few take large ones (a task's image).

Quart fixes a request's limit when it builds the request, before routing, from the app's
``MAX_CONTENT_LENGTH``; so the app's request class picks the limit by method and path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from quart import Request

__all__ = ["with_body_limits"]

R = TypeVar("R", bound=Request)


def with_body_limits(base: type[R], limits: Mapping[tuple[str, str], int]) -> type[R]:
    """A subclass of ``base`` whose body limit is ``limits[(METHOD, path)]`` where given
    (the path with and without its trailing slash), else the app's ``MAX_CONTENT_LENGTH``."""
    table = {
        (method.upper(), variant): size
        for (method, path), size in limits.items()
        for variant in {path, path.rstrip("/") or "/"}
    }

    class LimitedRequest(base):  # type: ignore[valid-type, misc]
        body_limits = table

        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            limit = self.body_limits.get((method.upper(), path))
            if limit is not None:
                kwargs["max_content_length"] = limit
            super().__init__(method, scheme, path, *args, **kwargs)

    LimitedRequest.__name__ = LimitedRequest.__qualname__ = f"Limited{base.__name__}"
    return LimitedRequest
