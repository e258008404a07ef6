"""Sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``, ``nox -s serve``,
``nox -s serve-search-offline``."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
# Sessions run on the interpreter nox itself runs on (>= 3.11); no other Python is needed.


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: unit tests on fakes, integration tests on a real PostgreSQL, and the
    fast part of the fault suite (the slow, load-heavy part is ``nox -s faults``)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session
def faults(session: nox.Session) -> None:
    """The whole fault suite against the real service process and real PostgreSQL servers."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "fault", "-s", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict only."""
    session.install("-e", ".[lint]")
    session.run("mypy", "--strict", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark against FastAPI+asyncpg and Flask+threads peers; writes bench/results/."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench.run", *session.posargs)


@nox.session
def overload(session: nox.Session) -> None:
    """Goodput and deadlines from 1 to 128 clients, with and without admission control;
    writes bench/results/overload.json and overload.png."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench.overload", *session.posargs)


@nox.session(name="bench-images")
def bench_images(session: nox.Session) -> None:
    """The image pipeline: throughput against workers and concurrency (and a naive
    thread-per-image design), memory against the number of files, the journal's size;
    writes bench/results/images.json and images.png (about 8 minutes)."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench.images", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """Serve the demo on http://127.0.0.1:8000 (embedded PostgreSQL if no DATABASE_URL)."""
    session.install("-e", ".")
    code = run_forwarding_signals(
        [_python(session), "-m", "service", "serve", *session.posargs], _env(session)
    )
    if code:
        session.error(f"serve exited with code {code}")


@nox.session(name="serve-search-offline")
def serve_search_offline(session: nox.Session) -> None:
    """The Stack Exchange search's offline demo: the fake API on 127.0.0.1:8099 and the
    service on http://127.0.0.1:8000 using it (``SEARCH_CONFIG=examples/search-offline.ini``),
    with the embedded PostgreSQL and Redis. Ctrl-C stops both."""
    session.install("-e", ".")
    python = _python(session)
    fake = subprocess.Popen([python, "-m", "service.search.fake_api", "--port", "8099"])
    try:
        code = run_forwarding_signals(
            [python, "-m", "service", "serve", *session.posargs],
            _env(session) | {"SEARCH_CONFIG": "examples/search-offline.ini"},
        )
    finally:
        fake.terminate()
        fake.wait(10)
    if code:
        session.error(f"serve exited with code {code}")


def run_forwarding_signals(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the server until it exits; SIGINT or SIGTERM sent to nox is passed on to it.

    The server runs in a session of its own, so a Ctrl-C in the terminal reaches nox alone,
    and nox hands it on to the server only: its workers finish their requests and its
    embedded PostgreSQL and valkey stop after them, not at the same moment (with the whole
    process group signalled, valkey died first and the stopping workers logged connection
    errors). ``session.run`` forwards nothing: a signal sent to nox alone left the server
    running and nox waiting for it forever. Exit code 0 for a server stopped by a signal.
    """
    server = subprocess.Popen(list(command), env=dict(env), start_new_session=True)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if server.poll() is None:
            server.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = server.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code


def _python(session: nox.Session) -> str:
    return os.path.join(str(session.bin), "python")


def _env(session: nox.Session) -> dict[str, str]:
    """The environment ``session.run`` would give: the session's venv first on PATH."""
    extra = {k: v for k, v in session.env.items() if v is not None}
    path = os.pathsep.join([str(session.bin), os.environ.get("PATH", "")])
    return os.environ | extra | {"PATH": path, "VIRTUAL_ENV": str(session.virtualenv.location)}


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing (mutmut) of the core modules against their fast unit tests only; the
    modules and tests are in pyproject's [tool.mutmut], the last score in docs/mutation.md.
    One worker at low priority: about 3 minutes on 2 cores. ``-- NAME...`` reruns mutants."""
    import shutil

    session.install("-e", ".[test]", "mutmut==3.8.1")
    if not session.posargs:
        shutil.rmtree("mutants", ignore_errors=True)  # mutmut's cache: start from scratch
    session.run(
        "nice", "-n", "10", "mutmut", "run", "--max-children", "1", *session.posargs, external=True
    )
    session.run("mutmut", "results")
