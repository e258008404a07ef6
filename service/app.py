"""The app factory: one quart-trio app that mounts every installed capability
(``service.capabilities``), on the platform's parts."""

from __future__ import annotations

import gc
import logging
import secrets
from contextlib import AbstractAsyncContextManager
from typing import Any

from quart import Blueprint, Response, render_template, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .capabilities import installed
from .platform.aio import open_worker_loop
from .platform.api_docs import install_api_docs
from .platform.assets import BOOTSTRAP_DIR
from .platform.body_limits import with_body_limits
from .platform.capability import AppParts, Capability, Entry
from .platform.database import APP_POOL_SIZE, Database, open_database
from .platform.forms import TextFormDataParser
from .platform.lifespan import Opener, WhileServing, hold_while_serving
from .platform.log_setup import configure_logging
from .platform.navigation import install_navigation
from .platform.redis_rate_limits import RedisRateLimiter
from .platform.responses import JSON_PATHS_KEY, json_response, wants_html
from .platform.settings import Settings
from .platform.shared_redis import SharedRedis
from .platform.unread_body import DrainUnreadBody

__all__ = ["configure_logging", "create_app", "create_app_from_env"]

logger = logging.getLogger("service.app")

#: The platform's own entries on the index page, after the capabilities'.
PLATFORM_INDEX = (
    Entry(
        "/docs",
        "API documentation",
        "every JSON endpoint, to read and to try (OpenAPI 3.1)",
        page=True,
        label="API docs",
    ),
)


def create_app(
    settings: Settings,
    *,
    capabilities: tuple[Capability, ...] | None = None,
    **fakes: Any,
) -> QuartTrio:
    """Build the app. Each call returns a new app (an app object can start only once).

    It mounts each of ``capabilities`` (default: every installed one), in order. ``fakes``
    go to the capability that takes them by name: ``open_sources`` to the fan-out (tests
    pass in-memory sources), ``passwords`` to the accounts (cheap hashing parameters).
    """
    capabilities = installed() if capabilities is None else capabilities
    app = QuartTrio(__name__, template_folder="platform/templates")
    # ``serve`` always sets one (configured, or generated once and kept); an app built
    # without one (tests) signs with a key of its own.
    app.secret_key = settings.secret_key or secrets.token_urlsafe(32)
    # The session cookie (CSRF tokens, flash messages): never readable by scripts, not sent
    # on cross-site posts, HTTPS-only when configured (a plain-http demo needs it off).
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.cookie_secure
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    # ... except where a route takes more (a task's image).
    limits: dict[tuple[str, str], int] = {}
    for capability in capabilities:
        if capability.body_limits is not None:
            limits.update(capability.body_limits(settings))
    app.request_class = with_body_limits(app.request_class, limits)
    # Errors on these paths are JSON whatever the client accepts.
    app.config[JSON_PATHS_KEY] = tuple(
        dict.fromkeys(path for capability in capabilities for path in capability.json_paths)
    )
    # Form fields that are not UTF-8 become a form error (not U+FFFD, passed on as text).
    app.request_class.form_data_parser_class = TextFormDataParser
    # A body the app left unread (an early 401, 404, 405 or 413) never wedges the connection.
    app.asgi_app = DrainUnreadBody(app.asgi_app)  # type: ignore[method-assign]
    # Bootstrap's files from the pip-installed package: the pages render offline.
    app.register_blueprint(
        Blueprint(
            "bootstrap", __name__, static_folder=BOOTSTRAP_DIR, static_url_path="/static/bootstrap"
        )
    )
    # The index page lists every capability's entries; the pages among them are in every
    # page's navigation bar too.
    entries = tuple(entry for c in capabilities for entry in c.index) + PLATFORM_INDEX
    install_navigation(app, entries)
    # What every capability shares, held open while the app serves: opened before theirs,
    # closed after them (platform/lifespan.py). One asyncio loop per worker ...
    loop = hold_while_serving(app, open_worker_loop, name="the asyncio loop")
    # ... one application database (an ORM engine and a raw-SQL pool) on it ...
    database = hold_while_serving(
        app, _app_database(settings.database_url, loop), name="the application database"
    )
    # ... and one Redis client.
    redis = SharedRedis(settings.redis_url)
    redis.install(app)
    # One set of counters: the log-in, registration and new-search limits, across workers.
    limiter = RedisRateLimiter(redis)
    parts = AppParts(settings, str(app.secret_key), loop, database, redis, limiter, fakes)
    for capability in capabilities:
        if capability.blueprint is not None:
            app.register_blueprint(capability.blueprint(parts))
    install_api_docs(app)

    @app.before_serving
    async def freeze_start_up_objects() -> None:
        # Registered after every capability's own start-up: everything built by then
        # (modules, engines, pools) lives as long as the worker. Move it out of the
        # cyclic GC's reach, so a full collection under load scans only what requests
        # allocate (measured: 3-5 ms pauses then).
        gc.collect()
        gc.freeze()

    @app.get("/")
    async def index() -> str:
        """What the service offers, for a person with a browser."""
        return await render_template("platform/index.html", capabilities=entries)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response | tuple[str, int, dict[str, str]]:
        status = error.code or 500
        headers: dict[str, str] = {
            name: value for name, value in error.get_headers() if name == "Retry-After"
        }
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        name = (error.name or "error").lower().replace(" ", "_")
        if wants_html(request):
            page = await render_template(
                "platform/error.html",
                status=status,
                title=error.name or "Error",
                message=error.description or "",
            )
            return page, status, headers
        detail = error.description or ""
        return json_response({"error": name, "message": detail, "detail": detail}, status, headers)

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response | tuple[str, int]:
        logger.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
        if wants_html(request):
            page = await render_template(
                "platform/error.html",
                status=500,
                title="Internal Server Error",
                message="Something went wrong on our side; it has been logged.",
            )
            return page, 500
        return json_response({"error": "internal_error", "message": "internal server error"}, 500)

    return app


def _app_database(url: str | None, loop: WhileServing[Any]) -> Opener[Database]:
    """The worker's application database on ``url`` (none without one), on ``loop``."""

    def opener() -> AbstractAsyncContextManager[Database] | None:
        if url is None:
            return None
        return open_database(url, user="app", pool_size=APP_POOL_SIZE, loop=loop.get())

    return opener


def create_app_from_env() -> QuartTrio:
    """The app as hypercorn's workers load it: settings from the environment."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings)
