"""The task API's contribution to the product (see ``service.capabilities``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..platform.capability import AppParts, Capability, Entry

if TYPE_CHECKING:
    from quart import Blueprint

    from ..platform.settings import Settings


def blueprint(parts: AppParts) -> Blueprint:
    from .routes import create_blueprint

    return create_blueprint(parts.settings, database=parts.database)


def body_limits(settings: Settings) -> Mapping[tuple[str, str], int]:
    from .routes import request_body_limits

    return request_body_limits(settings)


CAPABILITY = Capability(
    name="tasks",
    title="Task API",
    docs="docs/task-api.md",
    blueprint=blueprint,
    index=(
        Entry("/api/stats/tasks-created/", "Tasks", "the task API's total of tasks created (JSON)"),
    ),
    json_paths=("/api/",),
    body_limits=body_limits,
    background=("sweep",),
    settings=(
        "IMAGES_DIR",
        "MAX_IMAGE_BYTES",
        "MAX_IMAGE_PIXELS",
        "MAX_IMAGE_FRAMES",
        "MAX_JPEG_SCANS",
    ),
)
