"""Running the service: hypercorn with the trio worker, on the embedded database if needed."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import ExitStack

from hypercorn.config import Config
from hypercorn.run import run

from .dbinit import default_sql_files, initdb
from .embedded_pg import embedded_postgres
from .embedded_redis import embedded_redis
from .log_setup import configure_logging
from .settings import Settings

__all__ = ["hypercorn_config", "serve"]

logger = logging.getLogger("service.platform.server")

#: Time kept back from SHUTDOWN_GRACE_S for closing the pools after the connections.
_LIFESPAN_CLOSE_S = 1.0


def hypercorn_config(
    settings: Settings, *, app_path: str, host: str, port: int, workers: int
) -> Config:
    """The hypercorn configuration: trio workers loading the app factory ``app_path``
    (``module:factory()``: each worker imports the product's app, the platform never does)."""
    config = Config()
    config.application_path = app_path
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.worker_class = "trio"
    config.workers = workers
    # The grace period covers the whole shutdown: hypercorn's wait for open connections,
    # then the lifespan closing the pools (bounded, about a second at most). An in-flight
    # request (or an open WebSocket) can hold hypercorn for its whole graceful_timeout, so
    # that part must leave room for the rest. (Idle keep-alive connections close at once:
    # see unread_body.py.)
    config.graceful_timeout = max(0.0, settings.shutdown_grace_s - _LIFESPAN_CLOSE_S)
    config.accesslog = None
    # A Logger (not "-") makes hypercorn log through our handlers, in our format, once.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def serve(
    *,
    app_path: str,
    host: str,
    port: int,
    workers: int,
    prepare: Callable[[str], None] | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code.

    Without a database URL for every source, an embedded PostgreSQL is started in
    ``EMBEDDED_PG_DIR``, created and seeded, handed to the workers as
    ``DATABASE_URL``, and stopped on exit. A database given by ``DATABASE_URL`` gets
    ``schema.sql`` (idempotent: a newer version adds its new tables, and loses no data),
    not the demo rows. Without ``REDIS_URL``, an embedded Redis-compatible server (valkey)
    is started the same way and handed to the workers. Then ``prepare(dsn)`` runs once,
    before the workers start (the CLI seeds the accounts there).
    """
    settings = Settings.from_env()
    configure_logging(settings)
    with ExitStack() as stack:
        dsn = os.environ.get("DATABASE_URL") or None
        if settings.needs_embedded_database:
            dsn = stack.enter_context(embedded_postgres(settings.embedded_pg_dir))
            initdb(dsn)
            logger.info("embedded PostgreSQL ready, tables created and seeded")
            # Workers are separate processes that read their settings from the environment.
            os.environ["DATABASE_URL"] = dsn
        elif dsn is not None:
            schema, _seed = default_sql_files()
            initdb(dsn, [schema])
            logger.info("tables of every capability created where missing")
        if settings.redis_url is None:
            # Workers are separate processes that read their settings from the environment.
            os.environ["REDIS_URL"] = stack.enter_context(
                embedded_redis(settings.embedded_redis_dir)
            )
        if dsn is not None and prepare is not None:
            prepare(dsn)
        config = hypercorn_config(
            settings, app_path=app_path, host=host, port=port, workers=workers
        )
        return run(config)
    raise AssertionError("unreachable")
