"""The one list of installed capabilities, in order (Django's ``INSTALLED_APPS`` is the
model). The app factory mounts each one's blueprint, the index page and the navigation list
its entries, and ``python -m service`` adds its commands, in this order. Adding a capability
is a package with a ``capability.py`` and a line here."""

from __future__ import annotations

from functools import cache

from .platform.capability import Capability, load_capabilities

__all__ = ["INSTALLED", "installed"]

INSTALLED: tuple[str, ...] = (
    "service.fanout",
    "service.accounts",
    "service.auth_api",
    "service.tasks",
    "service.search",
    "service.images",
    "service.scores",
)


@cache
def installed() -> tuple[Capability, ...]:
    """Every installed capability's ``CAPABILITY``, in ``INSTALLED``'s order."""
    return load_capabilities(INSTALLED)
