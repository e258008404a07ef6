"""Stack Exchange search: pages to search question titles and browse the stored results,
a Redis response cache, a background refresher, and WebSocket notices of its refreshes."""

from __future__ import annotations

from .views import create_blueprint as create_blueprint

__all__ = ["create_blueprint"]
