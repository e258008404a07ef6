"""A real browser (headless Chromium, driven by selenium) against the real service process.

Register, log in, edit one's profile, the admin grants admin rights, delete with
confirmation, the 404 page. Each page's screenshot is saved under
``test-artifacts/browser/``. Skipped, with the reason, where Chromium or its driver is
not installed (``.ci/run`` installs both, so CI always runs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import click_and_wait, headless_chromium, require_browser, shot
from tests.support.service_runner import ServiceRunner

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-password-1"

require_browser()

webdriver = pytest.importorskip("selenium.webdriver")
By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait


@pytest.fixture(scope="module")
def site(empty_db_for_module: str) -> Iterator[str]:
    env = {
        "DATABASE_URL": empty_db_for_module,
        "ADMIN_EMAIL": "root@example.com",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SEED_USERS": "3",
        "SECRET_KEY": "browser-test-key-" + "x" * 32,
    }
    runner = ServiceRunner(env)
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


def log_in(driver: Any, url: str, email: str, password: str) -> None:
    driver.get(f"{url}/login")
    fill(driver, email=email, password=password)
    submit(driver)


def submit(driver: Any, button_id: str = "submit") -> None:
    """Click the button and wait until the next page is there (the old one is gone)."""
    click_and_wait(driver, button_id, timeout_s=10)


def log_out(driver: Any) -> None:
    submit(driver, "logout")
    assert "Logged out." in driver.page_source


def test_register_log_in_edit_grant_admin_delete_and_the_404_page(site: str, browser: Any) -> None:
    # Register: logged in at once, on the users list.
    browser.get(f"{site}/register")
    shot(browser, "01-register")
    fill(browser, email="carol@example.com", username="carol", password="carol-password")
    submit(browser)
    assert browser.current_url.endswith("/users")
    assert "Registered" in browser.page_source
    shot(browser, "02-users")
    log_out(browser)

    # Log in again, through a page that needs it (next= brings her back).
    browser.get(f"{site}/reports/users")
    assert "/login?next=" in browser.current_url
    shot(browser, "03-login")
    fill(browser, email="carol@example.com", password="carol-password")
    submit(browser)
    assert browser.current_url.endswith("/reports/users")
    shot(browser, "04-report")

    # Edit her own profile.
    browser.find_element(By.ID, "nav-user").click()
    browser.find_element(By.LINK_TEXT, "Edit").click()
    assert not browser.find_elements(By.NAME, "is_admin")  # only admins see the flag
    shot(browser, "05-edit-own")
    fill(browser, username="Carol C.")
    submit(browser)
    assert "Profile saved." in browser.page_source
    assert "Carol C." in browser.page_source
    carol_profile = browser.current_url
    log_out(browser)

    # The admin grants her admin rights.
    log_in(browser, site, "root@example.com", ADMIN_PASSWORD)
    browser.get(f"{carol_profile}/edit")
    browser.find_element(By.NAME, "is_admin").click()
    shot(browser, "06-admin-grants")
    submit(browser)
    assert "Profile saved." in browser.page_source
    assert browser.find_element(By.CSS_SELECTOR, "main .badge").text == "admin"
    log_out(browser)

    # Carol, now an admin, deletes her own account after confirming.
    log_in(browser, site, "carol@example.com", "carol-password")
    assert browser.find_element(By.CSS_SELECTOR, "nav .badge").text == "admin"
    browser.get(f"{carol_profile}/delete")
    shot(browser, "07-delete-confirm")
    submit(browser, "confirm")
    assert "Deleted carol@example.com." in browser.page_source
    log_in(browser, site, "carol@example.com", "carol-password")
    assert "Wrong email or password." in browser.page_source

    # A styled 404 page (the API documentation is the next test).
    browser.get(f"{site}/no/such/page")
    shot(browser, "08-not-found")
    assert "404" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_element(By.LINK_TEXT, "Back to the index")


def test_the_api_documentation_renders_offline(site: str, browser: Any) -> None:
    """Swagger UI 5 from the pip package renders the OpenAPI document with no outside host."""
    browser.get(f"{site}/docs")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    )
    paths = {
        e.text.replace("\u200b", "")
        for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    shot(browser, "09-api-docs")
    assert {"/api/login/", "/api/refresh/", "/api/me/", "/data", "/health"} <= paths
    errors = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "127.0.0.1" not in entry.get("message", "")
    ]
    assert errors == []  # nothing tried to reach the outside
