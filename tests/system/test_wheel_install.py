"""The product as a user installs it: the wheel built from this checkout, installed with its
dependencies into a fresh virtual environment, run from an empty directory (so nothing of
the checkout can be found by accident). Every command and every capability must work."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import trio
import trio_asyncio
import triopg
from sqlalchemy.engine import make_url

from service.platform.aio import use_loop
from tests.support import ROOT
from tests.support.service_runner import ServiceRunner

pytestmark = pytest.mark.integration

#: What the installed product must not see of the test run: the checkout on sys.path, and
#: the servers the test suite configured for itself.
HIDDEN_ENV = (
    "PYTHONPATH",
    "DATABASE_URL",
    "REDIS_URL",
    "SEARCH_CONFIG",
    "SOURCES_FILE",
    "DATA_DIR",
    "IMAGES_DIR",
)

#: What a checkout holds besides its sources (caches, venvs, build output, local data).
NOT_SOURCES = (
    ".git",
    ".venv*",
    ".nox",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".pgdata",
    ".data",
    "mutants",
    "test-artifacts",
)


class Installed:
    """A fresh venv holding the built wheel, and an empty directory to run it from."""

    def __init__(self, root: Path) -> None:
        self.wheel_dir = root / "dist"
        self.venv = root / "venv"
        self.python = str(self.venv / "bin" / "python")
        self.cwd = root / "empty"
        self.cwd.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in HIDDEN_ENV} | extra

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, "-m", "service", *args],
            cwd=self.cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    product = Installed(tmp_path_factory.mktemp("wheel"))
    # Built from a copy of the checkout's sources: an in-place build would reuse (and ship)
    # whatever an earlier build left in build/.
    source = tmp_path_factory.mktemp("source") / "checkout"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(product.wheel_dir), str(source)],
        check=True,
        env=product.env(),
    )
    (wheel,) = product.wheel_dir.glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(product.venv)], check=True)
    subprocess.run(
        [product.python, "-m", "pip", "--disable-pip-version-check", "-q", "install", str(wheel)],
        check=True,
        env=product.env(),
    )
    return product


def test_the_wheel_carries_every_package_and_data_file(installed: Installed) -> None:
    (wheel,) = installed.wheel_dir.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        str(path.parent.relative_to(ROOT))
        for path in (ROOT / "service").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert {package for package in packages if f"{package}/__init__.py" not in names} == set()
    shipped = {
        "service/platform/sql/schema.sql",
        "service/platform/sql/seed.sql",
        "service/search/search.ini",
        "service/py.typed",
    }
    assert shipped <= names
    assert not [name for name in names if not name.startswith(("service/", "switchyard-"))]


async def _new_database(pg_dsn: str) -> str:
    name = f"wheel_{secrets.token_hex(4)}"
    async with trio_asyncio.open_loop() as loop:
        with use_loop(loop):
            async with triopg.connect(pg_dsn) as conn:
                await conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(pg_dsn).set(database=name).render_as_string(hide_password=False)


def test_initdb_then_serve_answers_every_capability(installed: Installed, pg_dsn: str) -> None:
    dsn = trio.run(_new_database, pg_dsn)
    done = installed.run("initdb", "--dsn", dsn)
    assert done.returncode == 0, done.stderr

    runner = ServiceRunner(
        {"DATABASE_URL": dsn},
        python=installed.python,
        cwd=str(installed.cwd),
        drop_env=HIDDEN_ENV,
    )
    try:
        url = runner.wait_started(90)
        with httpx.Client(base_url=url, timeout=30) as client:
            rows = client.get("/data")
            assert rows.status_code == 200
            assert len(rows.json()) == 60
            for page in ("/", "/login", "/register", "/search", "/docs", "/openapi.json"):
                assert client.get(page).status_code == 200, page
            total = client.get("/api/stats/tasks-created/")
            assert total.status_code == 200
            assert isinstance(total.json()["total"], int)
    finally:
        code, _took = runner.stop()
    assert code == 0, runner.output.decode(errors="replace")


def test_the_command_line_capabilities_run(installed: Installed) -> None:
    score = installed.run("score", "--offset", "10", "--seed", "1")
    assert score.returncode == 0, score.stderr
    assert score.stdout.startswith("offset 10: home ")
    images = installed.run("images", "process", "--help")
    assert images.returncode == 0, images.stderr
    assert "usage:" in images.stdout
