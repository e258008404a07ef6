"""The Stack Exchange search's contribution to the product (see ``service.capabilities``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..platform.capability import AppParts, Capability, Entry

if TYPE_CHECKING:
    from quart import Blueprint


def blueprint(parts: AppParts) -> Blueprint:
    from .views import create_blueprint

    return create_blueprint(
        parts.settings, database=parts.database, redis=parts.redis, limiter=parts.limiter
    )


def commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)


CAPABILITY = Capability(
    name="search",
    title="Stack Exchange search",
    docs="docs/search.md",
    blueprint=blueprint,
    commands=commands,
    index=(
        Entry(
            "/search",
            "Stack Exchange search",
            "search question titles, browse the stored results (HTML)",
            page=True,
            label="Search",
        ),
    ),
    background=("serve_notice_relay", "Refresher.serve"),
    settings=("SEARCH_CONFIG",),
)
