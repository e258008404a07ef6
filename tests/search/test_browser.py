"""A real browser (headless Chromium, driven by selenium) on the search pages of the real
service process, the fake Stack Exchange API in a process of its own: search, page, change
the page size, sort, then a refresh by the standalone command, whose notice appears on the
open page without a reload. Screenshots under ``test-artifacts/browser/``. Skipped where
Chromium or its driver is not installed (``.ci/run`` installs both; REQUIRE_BROWSER)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.browser import click_and_wait, headless_chromium, require_browser, shot
from tests.support.search_fixtures import fake_api_process, write_ini
from tests.support.service_runner import ServiceRunner

pytestmark = pytest.mark.integration


require_browser()

webdriver = pytest.importorskip("selenium.webdriver")
By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait


@dataclass
class Site:
    url: str
    fake_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def fake_api() -> Iterator[str]:
    with fake_api_process() as url:
        yield url


@pytest.fixture(scope="module")
def site(
    empty_db_for_module: str,
    redis_url: str,
    fake_api: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    ini = write_ini(tmp_path_factory.mktemp("search") / "search.ini", fake_api)
    env = {
        "DATABASE_URL": empty_db_for_module,
        "REDIS_URL": redis_url,
        "SEARCH_CONFIG": str(ini),
        "SECRET_KEY": "browser-test-key-" + "x" * 32,
        "SEED_USERS": "0",
    }
    runner = ServiceRunner(env)
    try:
        yield Site(runner.wait_started(), fake_api, env)
    finally:
        runner.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium("1400,1000") as driver:
        yield driver


def rows(driver: Any) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, "#results tbody tr"))


def cell_texts(driver: Any, column: int) -> list[str]:
    return [row.find_elements(By.TAG_NAME, "td")[column].text for row in rows(driver)]


def test_search_page_resize_sort_and_see_a_refresh_notice_without_reloading(
    site: Site, browser: Any
) -> None:
    # Search: the query is stored and its first page shown.
    browser.get(f"{site.url}/search")
    shot(browser, "search-01-form")
    browser.find_element(By.NAME, "q").send_keys("trio nursery")
    click_and_wait(browser, "submit")
    assert "/search/queries/" in browser.current_url
    assert len(rows(browser)) == 25
    shot(browser, "search-02-results")

    # Page forward.
    first_page = cell_texts(browser, 0)
    click_and_wait(browser, "next")
    assert "page=2" in browser.current_url
    assert "Page 2 of" in browser.find_element(By.ID, "position").text
    assert cell_texts(browser, 0) != first_page

    # 50 per page: the first row in view stays in view (row 26 is on page 1 of 50).
    click_and_wait(browser, "per-page-50")
    assert "per_page=50" in browser.current_url
    assert "page=1" in browser.current_url
    assert len(rows(browser)) == 50
    shot(browser, "search-03-fifty")

    # The default sort is by score, high first: its header flips it; then by title, A to Z.
    scores = [int(text) for text in cell_texts(browser, 1)]
    assert scores == sorted(scores, reverse=True)
    click_and_wait(browser, "sort-score")
    assert "sort=score&order=asc" in browser.current_url
    scores = [int(text) for text in cell_texts(browser, 1)]
    assert scores == sorted(scores)
    click_and_wait(browser, "sort-title")
    titles = [text.lower() for text in cell_texts(browser, 0)]
    assert titles == sorted(titles)
    assert "▲" in browser.find_element(By.ID, "sort-title").text
    shot(browser, "search-04-sorted")

    # The page's WebSocket is open; the page is marked, to see that it is never reloaded.
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "notices").get_attribute("data-connected") == "1"
    )
    browser.execute_script("window.notReloaded = true;")

    # A refresh by the standalone command (the site changed meanwhile).
    httpx.post(f"{site.fake_url}/_fake/state", json={"generation": "+1"}).raise_for_status()
    done = subprocess.run(
        [sys.executable, "-m", "service", "search-refresh", "--once"],
        env={**os.environ, **site.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 queries refreshed" in done.stdout

    notice = WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#notices .notice")
    )[0]
    assert 'Query "trio nursery" on stackoverflow was updated' in notice.text
    assert browser.execute_script("return window.notReloaded === true;")
    shot(browser, "search-05-notice")
    errors = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not _expected(entry.get("message", ""))
    ]
    assert errors == []


def _expected(message: str) -> bool:
    """The one console error the pages cause on purpose: the service has no favicon."""
    return "/favicon.ico" in message and "404" in message
