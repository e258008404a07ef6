"""The image pipeline's contribution to the product: a command (see ``service.capabilities``)."""

from __future__ import annotations

from typing import Any

from ..platform.capability import Capability


def commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)


CAPABILITY = Capability(
    name="images",
    title="Image batch pipeline",
    docs="docs/image-pipeline.md",
    commands=commands,
)
