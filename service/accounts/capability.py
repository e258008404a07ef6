"""The accounts' contribution to the product (see ``service.capabilities``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..platform.capability import AppParts, Capability, Entry

if TYPE_CHECKING:
    from quart import Blueprint


def blueprint(parts: AppParts) -> Blueprint:
    from .views import create_blueprint

    return create_blueprint(
        parts.settings,
        database=parts.database,
        secret_key=parts.secret_key,
        passwords=parts.fakes.get("passwords"),
        limiter=parts.limiter,
    )


def commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)


def prepare(env: Mapping[str, str]) -> Callable[[str], None]:
    from .cli import prepare

    return prepare(env)


CAPABILITY = Capability(
    name="accounts",
    title="Accounts",
    docs="docs/accounts.md",
    blueprint=blueprint,
    commands=commands,
    index=(
        Entry("/users", "Users", "the registered users (HTML)", page=True, audience="users"),
        Entry(
            "/reports/users",
            "Users report",
            "registrations per day, email domains, admins (HTML)",
            page=True,
            audience="users",
            label="Report",
        ),
    ),
    prepare=prepare,
    settings=("ADMIN_EMAIL", "ADMIN_PASSWORD", "SEED_USERS", "REGISTER_RATE_LIMIT"),
)
