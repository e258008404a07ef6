"""What one installed capability brings to the product, said in one small object.

Each capability package has a module ``capability.py`` with ``CAPABILITY = Capability(...)``;
the product's one ordered list of installed packages (``service.capabilities.INSTALLED``;
Django's ``INSTALLED_APPS`` is the model) is all the wiring there is: the app factory mounts
each blueprint and takes each body limit and JSON path, the index page and the navigation
list each entry, and the command line adds each capability's commands. The platform names no
capability. A ``capability.py`` imports its modules inside its functions: listing the
capabilities imports none of them (the command line's start stays quick).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a command that needs no web app imports none of these
    from quart import Blueprint

    from .rate_limits import RateLimiter
    from .settings import Settings
    from .shared_redis import SharedRedis

__all__ = ["AppParts", "Capability", "IndexEntry", "load_capabilities"]


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One line of the index page: a path, its title, what a visitor finds there."""

    path: str
    title: str
    summary: str
    #: Also a link in the navigation bar of every page.
    nav: bool = False
    #: In the navigation bar for admins only (the page itself checks, too).
    admin_only: bool = False


@dataclass(frozen=True, slots=True)
class AppParts:
    """What the platform hands every capability's blueprint factory: one of each per app."""

    settings: Settings
    #: Signs the session cookies and the auth API's tokens.
    secret_key: str
    #: The one Redis client (open while the app serves).
    redis: SharedRedis
    #: The one set of counters (log-in, registration, new searches), across workers.
    limiter: RateLimiter
    #: Fakes a test hands to one capability, by name (``open_sources``, ``passwords``).
    fakes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Capability:
    """One capability's contribution to the product."""

    #: The package's last name (``"tasks"``).
    name: str
    #: For people: the docs, the index page.
    title: str
    #: Its reference, relative to the repository's top level.
    docs: str
    #: ``blueprint(parts) -> Blueprint``: its routes and lifespan; None: no web part.
    blueprint: Callable[[AppParts], Blueprint] | None = None
    #: ``commands(subparsers) -> None``: the ``python -m service`` commands it adds.
    commands: Callable[[Any], None] | None = None
    #: Its entries on the index page (and in the navigation).
    index: tuple[IndexEntry, ...] = ()
    #: Path prefixes whose clients are programs: errors there are JSON, never a page.
    json_paths: tuple[str, ...] = ()
    #: ``body_limits(settings) -> {(method, path): bytes}``: routes that take more than
    #: the platform's default body limit.
    body_limits: Callable[[Settings], Mapping[tuple[str, str], int]] | None = None
    #: The background tasks it runs while the app serves (their functions' names).
    background: tuple[str, ...] = ()
    #: The environment variables it reads: its settings section (docs/configuration.md).
    settings: tuple[str, ...] = ()
    #: ``prepare(env) -> run(dsn)``: ``serve`` calls it before anything starts (a bad
    #: setting stops it there), and ``run`` on the application database before the workers.
    prepare: Callable[[Mapping[str, str]], Callable[[str], None]] | None = None


def load_capabilities(packages: Iterable[str]) -> tuple[Capability, ...]:
    """Each package's ``capability.CAPABILITY``, in the order given (the order of the index
    page, the navigation, the blueprints and the commands)."""
    loaded = []
    for package in packages:
        capability = importlib.import_module(f"{package}.capability").CAPABILITY
        if not isinstance(capability, Capability):
            raise TypeError(f"{package}.capability.CAPABILITY is not a Capability")
        if capability.name != package.rpartition(".")[2]:
            raise ValueError(f"{package}: CAPABILITY.name is {capability.name!r}")
        loaded.append(capability)
    return tuple(loaded)
