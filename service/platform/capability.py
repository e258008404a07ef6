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
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # a command that needs no web app imports none of these
    from quart import Blueprint

    from .database import Database
    from .lifespan import WhileServing
    from .rate_limits import RateLimiter
    from .settings import Settings
    from .shared_redis import SharedRedis

__all__ = ["AppParts", "Audience", "Capability", "Entry", "load_capabilities"]


#: Who may open an entry: anyone, a logged-in user, an admin.
Audience = Literal["everyone", "users", "admins"]


class _HasIsAdmin(Protocol):
    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry point of a capability: listed on the index; a ``page`` (HTML) is also
    linked from every page's navigation, for the viewers its ``audience`` lets in."""

    path: str
    title: str
    description: str
    page: bool = False
    audience: Audience = "everyone"
    #: The navigation's shorter name for it (default: the title).
    label: str = ""

    def open_to(self, viewer: _HasIsAdmin | None) -> bool:
        """Whether ``viewer`` (None: not logged in) may open it."""
        if self.audience == "everyone":
            return True
        if viewer is None:
            return False
        return self.audience == "users" or viewer.is_admin

    def active_on(self, path: str) -> bool:
        """Whether the page at ``path`` is this entry or under it."""
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


@dataclass(frozen=True, slots=True)
class AppParts:
    """What the platform hands every capability's blueprint factory: one of each per app."""

    settings: Settings
    #: Signs the session cookies and the auth API's tokens.
    secret_key: str
    #: The worker's one asyncio loop (trio-asyncio), open while the app serves.
    loop: WhileServing[Any]
    #: The worker's one application database on it (None without ``DATABASE_URL``).
    database: WhileServing[Database]
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
    #: Its entries on the index page (its pages also in every page's navigation).
    index: tuple[Entry, ...] = ()
    #: Path prefixes whose clients are programs: errors there are JSON, never a page.
    json_paths: tuple[str, ...] = ()
    #: ``body_limits(settings) -> {(method, path): bytes}``: routes that take more than
    #: the platform's default body limit.
    body_limits: Callable[[Settings], Mapping[tuple[str, str], int]] | None = None
    #: The background tasks it starts when the app serves (their functions' names).
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
