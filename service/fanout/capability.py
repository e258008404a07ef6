"""The fan-out's contribution to the product (see ``service.capabilities``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..platform.capability import AppParts, Capability, Entry

if TYPE_CHECKING:
    from quart import Blueprint


def blueprint(parts: AppParts) -> Blueprint:
    from .routes import create_blueprint

    return create_blueprint(
        parts.settings, loop=parts.loop, open_sources=parts.fakes.get("open_sources")
    )


CAPABILITY = Capability(
    name="fanout",
    title="Fan-out",
    docs="docs/fanout.md",
    blueprint=blueprint,
    index=(
        Entry("/data", "Fan-out", "every source read at once, each under its own deadline (JSON)"),
        Entry("/ready", "Readiness", "can each source answer right now? (JSON)"),
        Entry("/health", "Health", "the worker is serving, and how loaded it is (JSON)"),
    ),
    json_paths=("/data", "/ready", "/health", "/demo/"),
    settings=(
        "SOURCES_FILE",
        "SOURCE_TIMEOUT_S",
        "POOL_MAX_SIZE",
        "STATEMENT_TIMEOUT_MS",
        "CONNECTION_CHECK_INTERVAL_MS",
        "HTTP_MAX_BODY_BYTES",
        "HTTP_MAX_CONNECTIONS",
        "COALESCE_REQUESTS",
        "ADMISSION_LIMIT",
        "ADMISSION_QUEUE",
        "ADMISSION_MAX_WAIT_S",
    ),
)
