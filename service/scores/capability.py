"""The game scores' contribution to the product: a command (see ``service.capabilities``)."""

from __future__ import annotations

from typing import Any

from ..platform.capability import Capability


def commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)


CAPABILITY = Capability(
    name="scores",
    title="Game scores",
    docs="docs/scores.md",
    commands=commands,
)
