"""The auth API's contribution to the product (see ``service.capabilities``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..platform.capability import AppParts, Capability, Entry

if TYPE_CHECKING:
    from quart import Blueprint


def blueprint(parts: AppParts) -> Blueprint:
    from .routes import create_blueprint

    return create_blueprint(parts.settings, database=parts.database, secret_key=parts.secret_key)


CAPABILITY = Capability(
    name="auth_api",
    title="Auth API",
    docs="docs/auth-api.md",
    blueprint=blueprint,
    index=(
        Entry(
            "/admin/settings",
            "Settings",
            "the auth API's token lifetimes (HTML)",
            page=True,
            audience="admins",
        ),
    ),
    json_paths=("/api/",),
    background=("purge_forever", "reload_forever"),
    settings=("ACCESS_TOKEN_LEEWAY_S", "REFRESH_REUSE_GRACE_S"),
)
