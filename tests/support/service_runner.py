"""Running ``python -m service serve`` as a real process, from sync fixtures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RUNNING = re.compile(rb"Running on http://127\.0\.0\.1:(\d+)")


class ServiceRunner:
    """A service process on a free port; its output is collected by a thread."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 1,
        port: int = 0,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
        cwd: str | None = None,
        drop_env: Sequence[str] = (),
        own_group: bool = False,
    ) -> None:
        """``own_group``: the service leads a process group of its own, standing for a
        terminal's foreground group (a Ctrl-C there signals the whole group)."""
        dropped = {"DATABASE_URL", *drop_env}
        full_env = {k: v for k, v in os.environ.items() if k not in dropped} | dict(env)
        self.process = subprocess.Popen(
            [
                python,
                "-m",
                "service",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *list(extra_args),
            ],
            env=full_env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
        self.output = bytearray()
        self.url = ""
        self._started = threading.Event()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            self.output.extend(line)
            match = RUNNING.search(line)
            if match and not self.url:
                self.url = f"http://127.0.0.1:{match.group(1).decode()}"
                self._started.set()
        self._started.set()

    def wait_started(self, timeout_s: float = 60.0) -> str:
        self._started.wait(timeout_s)
        if not self.url:
            self.stop()
            raise RuntimeError(f"service did not start:\n{self.output.decode()}")
        return self.url

    def worker_pids(self) -> list[int]:
        """The worker processes (hypercorn spawns them as children)."""
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def stop(self, grace_s: float = 15.0) -> tuple[int, float]:
        """SIGTERM and wait; (exit code, seconds it took). SIGKILL after ``grace_s``."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        took = time.monotonic() - started
        self._drainer.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code, took


def worker_processes(runner: ServiceRunner) -> list[Any]:
    """The service's worker processes (hypercorn spawns them; the service's other children
    are multiprocessing's resource tracker and, without REDIS_URL, the embedded valkey)."""
    import psutil

    children = [psutil.Process(pid) for pid in runner.worker_pids()]
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]


def worker_serving(workers: Sequence[Any], client_addr: tuple[str, int]) -> int | None:
    """The pid of the worker (of ``workers``, psutil processes) whose open connection comes
    from ``client_addr`` (a client's address and port); None if none has it open."""
    for worker in workers:
        for conn in worker.net_connections("tcp"):
            if conn.raddr and (conn.raddr.ip, conn.raddr.port) == client_addr:
                return int(worker.pid)
    return None


@contextmanager
def two_worker_service(
    database_url: str, images_dir: Path, name: str, **env: str
) -> Iterator[ServiceRunner]:
    """The real service with exactly 2 worker processes on ``database_url`` (no fake users,
    a known admin password, ``env`` on top); its runner (URL, output, workers) while the
    block runs."""
    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": f"{name}-test-key-" + "x" * 32,
        "IMAGES_DIR": str(images_dir),
        "SEED_USERS": "0",
        "ADMIN_PASSWORD": "admin password for the test",
        **env,
    }
    runner = ServiceRunner(settings, workers=2)
    try:
        runner.wait_started()
        assert len(worker_processes(runner)) == 2
        yield runner
    finally:
        runner.stop()


@contextmanager
def two_workers(database_url: str, images_dir: Path, name: str, **env: str) -> Iterator[str]:
    """:func:`two_worker_service`'s URL while the block runs."""
    with two_worker_service(database_url, images_dir, name, **env) as runner:
        yield runner.url
