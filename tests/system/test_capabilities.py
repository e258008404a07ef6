"""The one list of installed capabilities: the app, the index page, the JSON error paths,
the command line and the settings' sections all come from it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from service.accounts.passwords import Passwords
from service.app import create_app
from service.capabilities import installed
from service.platform import settings as settings_module
from service.platform.capability import Capability
from service.platform.settings import Settings
from service.platform.source_config import DEMO_URL_VARIABLES
from tests.support import ROOT
from tests.support.search_fixtures import write_ini

HTML = {"Accept": "text/html"}


def only(*names: str) -> tuple[Capability, ...]:
    chosen = tuple(c for c in installed() if c.name in names)
    assert [c.name for c in chosen] == [c.name for c in installed() if c.name in names]
    return chosen


@asynccontextmanager
async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
    yield []


async def test_the_app_mounts_the_capabilities_it_is_given_and_lists_only_theirs() -> None:
    app = create_app(Settings.from_env({}), capabilities=only("fanout"), open_sources=no_sources)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/data")).status_code == 200
        for path in ("/users", "/search", "/api/tasks/", "/admin/settings"):
            assert (await client.get(path)).status_code == 404, path
        index = await (await client.get("/", headers=HTML)).get_data(as_text=True)
    assert 'href="/data"' in index
    assert 'href="/docs"' in index
    assert 'href="/search"' not in index
    assert 'href="/users"' not in index


async def test_the_index_lists_every_installed_capabilitys_entries_in_order() -> None:
    app = create_app(Settings.from_env({}), open_sources=no_sources)
    async with app.test_app() as test_app:
        page = await (await test_app.test_client().get("/", headers=HTML)).get_data(as_text=True)
    listed = re.findall(r'list-group-item[^>]*href="([^"]+)"', page)
    expected = [entry.path for c in installed() for entry in c.index] + ["/docs"]
    assert listed == expected


async def test_errors_are_json_on_the_paths_a_capability_names_and_pages_elsewhere() -> None:
    without_api = create_app(
        Settings.from_env({}), capabilities=only("fanout"), open_sources=no_sources
    )
    with_api = create_app(
        Settings.from_env({}), capabilities=only("fanout", "tasks"), open_sources=no_sources
    )
    for app, api_is_json in ((without_api, False), (with_api, True)):
        async with app.test_app() as test_app:
            client = test_app.test_client()
            response = await client.get("/api/nothing-here", headers=HTML)
            assert response.status_code == 404
            assert (response.content_type == "application/json") is api_is_json
            response = await client.get("/nothing-here", headers=HTML)
            assert response.content_type.startswith("text/html")
            response = await client.get("/data/x", headers=HTML)
            assert response.content_type == "application/json"  # the fan-out's /data


def test_a_body_limit_comes_from_the_capability_that_takes_the_body() -> None:
    settings = Settings.from_env({"MAX_IMAGE_BYTES": "3000"})
    (tasks,) = only("tasks")
    assert tasks.body_limits is not None
    limits = tasks.body_limits(settings)
    assert set(limits) == {("POST", "/api/tasks/")}
    assert limits[("POST", "/api/tasks/")] > 4000  # 3000 bytes in base64, and the JSON


def test_every_variable_belongs_to_the_platform_or_one_capability_and_is_documented() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    platform_table = configuration.split("## The platform's variables")[1].split("\n## ")[0]
    platform = set(re.findall(r"^\| `([A-Z_0-9]+)`", platform_table, re.M))
    read = {*settings_module._VARIABLES, *DEMO_URL_VARIABLES}
    owners: dict[str, list[str]] = {name: ["platform"] for name in platform}
    for capability in installed():
        page = (ROOT / capability.docs).read_text()
        for name in capability.settings:
            owners.setdefault(name, []).append(capability.name)
            assert f"`{name}`" in page, f"{name} is not in {capability.docs}"
            assert f"`{name}`" in configuration, f"{name} is not in docs/configuration.md"
    shared = {name: who for name, who in owners.items() if len(who) > 1}
    assert shared == {}
    unowned = sorted(name for name in read - set(owners) if name not in DEMO_URL_VARIABLES)
    assert unowned == []


def test_the_command_line_has_every_capabilitys_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "initdb", "users", "images", "score", "search"):
        assert re.search(rf"\b{command}\b", result.stdout), command


def test_listing_the_capabilities_imports_none_of_their_modules() -> None:
    code = (
        "import sys\n"
        "from service.capabilities import installed\n"
        "assert len(installed()) == 7\n"
        "views = sorted(m for m in sys.modules if m.endswith(('.views', '.routes', '.cli')))\n"
        "assert views == [], views\n"
        "web = sorted(m for m in ('quart', 'quart_trio', 'coredis') if m in sys.modules)\n"
        "assert web == [], web\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)


@pytest.mark.parametrize("capability", installed(), ids=lambda c: c.name)
def test_each_capability_has_a_web_part_or_commands(capability: Capability) -> None:
    assert capability.blueprint is not None or capability.commands is not None


class _Spawned(trio.abc.Instrument):
    """The name of every task spawned while it is installed."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


@pytest.mark.integration
async def test_every_declared_background_task_is_started_when_the_app_serves(
    empty_db: str, redis_url: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": empty_db,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-key-" + "x" * 32,
            "SEARCH_CONFIG": str(write_ini(tmp_path / "search.ini", "http://127.0.0.1:9")),
            "IMAGES_DIR": str(tmp_path / "images"),
        }
    )
    declared = {name for c in installed() for name in c.background}
    app = create_app(settings, passwords=Passwords.cheap())
    spawned = _Spawned()
    trio.lowlevel.add_instrument(spawned)
    try:
        async with app.test_app():
            await trio.sleep(0.5)  # the background tasks start in the app's nursery
    finally:
        trio.lowlevel.remove_instrument(spawned)
    running = spawned.names
    missing = sorted(
        name
        for name in declared
        if not any(task.endswith(("." + name, ">." + name)) or task == name for task in running)
    )
    assert missing == []
