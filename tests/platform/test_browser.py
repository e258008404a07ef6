"""One site, in a real browser (headless Chromium, driven by selenium) against the real service
process: every HTML page, visited by a visitor not logged in, a user and the admin, has the
one navigation bar with the links that viewer may follow and, for a logged-in viewer, their
name and a log-out button. A screenshot of each page is saved as
``test-artifacts/browser/site-<viewer>-<page>.png``. Skipped where Chromium or its driver is
not installed (``.ci/run`` installs both; REQUIRE_BROWSER)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.platform.navigation import PRODUCT_NAME
from tests.support.browser import click_and_wait, headless_chromium, require_browser, shot
from tests.support.search_fixtures import fake_api_process, write_ini
from tests.support.service_runner import ServiceRunner

pytestmark = pytest.mark.integration

require_browser()

By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "admin-password-1"
ANONYMOUS_LINKS = ["Search", "API docs"]
USER_LINKS = ["Users", "Report", *ANONYMOUS_LINKS]
ADMIN_LINKS = ["Users", "Report", "Settings", *ANONYMOUS_LINKS]


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
) -> Iterator[str]:
    ini = write_ini(tmp_path_factory.mktemp("search") / "search.ini", fake_api)
    runner = ServiceRunner(
        {
            "DATABASE_URL": empty_db_for_module,
            "REDIS_URL": redis_url,
            "SEARCH_CONFIG": str(ini),
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SEED_USERS": "3",
            "SECRET_KEY": "browser-test-key-" + "x" * 32,
            # The session's valkey counts every test's registrations from this address.
            "REGISTER_RATE_LIMIT": "1000/minute",
        }
    )
    try:
        yield runner.wait_started()
    finally:
        runner.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium("1200,900") as driver:
        yield driver


def fill(driver: Any, **fields: str) -> None:
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)


def check_navigation(driver: Any, links: list[str], user: str | None) -> None:
    """The page has the one navigation bar: the brand, ``links``, and ``user`` with a
    log-out button (None: the log-in and register links)."""
    bars = driver.find_elements(By.CSS_SELECTOR, "nav#site-nav")
    assert len(bars) == 1, driver.current_url
    nav = bars[0]
    assert nav.find_element(By.ID, "nav-brand").text == PRODUCT_NAME
    assert [a.text for a in nav.find_elements(By.CSS_SELECTOR, "#nav-links a")] == links
    assert driver.title.endswith(PRODUCT_NAME), driver.title
    viewer = nav.find_element(By.ID, "nav-viewer")
    if user is None:
        assert not found_at_once(driver, viewer, "#nav-user, #logout")
        assert [a.text for a in viewer.find_elements(By.TAG_NAME, "a")] == ["Log in", "Register"]
    else:
        assert viewer.find_element(By.ID, "nav-user").text == user
        assert viewer.find_element(By.ID, "logout").text == "Log out"


def found_at_once(driver: Any, root: Any, css: str) -> list[Any]:
    """The elements under ``root`` that match ``css``, found without the implicit wait
    (which would wait its 5 s for each that is rightly not there)."""
    driver.implicitly_wait(0)
    try:
        return list(root.find_elements(By.CSS_SELECTOR, css))
    finally:
        driver.implicitly_wait(5)


def visit(driver: Any, url: str, name: str, links: list[str], user: str | None) -> None:
    driver.get(url)
    if url.endswith("/docs"):  # Swagger UI draws the document after the page has loaded
        WebDriverWait(driver, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
    check_navigation(driver, links, user)
    shot(driver, f"site-{name}")


def log_in(driver: Any, url: str, email: str, password: str) -> None:
    driver.get(f"{url}/login")
    fill(driver, email=email, password=password)
    click_and_wait(driver, "submit")


def test_every_page_has_the_one_navigation_for_each_viewer(site: str, browser: Any) -> None:
    # A visitor not logged in: the public pages, a stored search's results, the errors.
    browser.get(f"{site}/search")
    browser.find_element(By.NAME, "q").send_keys("trio nursery")
    click_and_wait(browser, "submit")
    results = browser.current_url
    assert "/search/queries/" in results
    public = {
        "index": f"{site}/",
        "login": f"{site}/login",
        "register": f"{site}/register",
        "search": f"{site}/search",
        "search-queries": f"{site}/search/queries",
        "search-results": results,
        "docs": f"{site}/docs",
        "not-found": f"{site}/no/such/page",
    }
    for name, url in public.items():
        visit(browser, url, f"anonymous-{name}", ANONYMOUS_LINKS, None)
    # The register form states the password rule under its field.
    browser.get(f"{site}/register")
    rule = browser.find_element(By.ID, "password-rule").text
    assert rule == "8 to 1,024 characters."
    browser.get(f"{site}/users")
    assert "/login?next=" in browser.current_url  # the users are for logged-in users

    # A user (registered here): the users' pages, and not the admin's settings (403).
    browser.get(f"{site}/register")
    fill(browser, email="carol@example.com", username="carol", password="carol-password")
    click_and_wait(browser, "submit")
    profile = browser.find_element(By.ID, "nav-user").get_attribute("href")
    for name, url in {
        "index": f"{site}/",
        "users": f"{site}/users",
        "profile": profile,
        "edit": f"{profile}/edit",
        "search-results": results,
        "forbidden": f"{site}/admin/settings",
    }.items():
        visit(browser, url, f"user-{name}", USER_LINKS, "carol")
    assert "403" in browser.find_element(By.TAG_NAME, "h1").text
    click_and_wait(browser, "logout")
    assert "Logged out." in browser.page_source
    check_navigation(browser, ANONYMOUS_LINKS, None)

    # The admin: every page, the settings among them; the search pages name them too,
    # although a visitor not logged in had them cached.
    log_in(browser, site, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert browser.find_element(By.CSS_SELECTOR, "nav .badge").text == "admin"
    admin_profile = browser.find_element(By.ID, "nav-user").get_attribute("href")
    admin_pages = {
        "index": f"{site}/",
        "users": f"{site}/users",
        "profile": admin_profile,
        "edit": f"{admin_profile}/edit",
        "delete": f"{profile}/delete",
        "report": f"{site}/reports/users",
        "settings": f"{site}/admin/settings",
        **{name: url for name, url in public.items() if name != "index"},
    }
    for name, url in admin_pages.items():
        visit(browser, url, f"admin-{name}", ADMIN_LINKS, "admin")
    browser.get(f"{site}/")
    assert not found_at_once(browser, browser, "#entries .audience")  # no "log in first"

    errors = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not _expected(entry.get("message", ""))
    ]
    assert errors == []


def _expected(message: str) -> bool:
    """The console errors the test causes on purpose: the error pages it visits (their
    status), and the favicon the service does not have."""
    return any(
        f"{path} - Failed to load resource: the server responded with a status of {status}"
        in message
        for path, status in (
            ("/no/such/page", 404),
            ("/admin/settings", 403),
            ("/favicon.ico", 404),
        )
    )


def test_the_navigation_wraps_on_a_narrow_screen(site: str) -> None:
    with headless_chromium("420,900") as browser:
        log_in(browser, site, ADMIN_EMAIL, ADMIN_PASSWORD)
        browser.get(f"{site}/search")
        check_navigation(browser, ADMIN_LINKS, "admin")
        shot(browser, "site-admin-search-narrow")
        sideways = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;"
        )
        assert sideways <= 0  # nothing sticks out: the bar wraps
