"""Headless Chromium (selenium) for the browser tests: the skip where it is not installed,
one way to start it (no outside network), and screenshots under ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def require_browser() -> None:
    """Call at a browser test module's top: skip the module, with the reason, where Chromium
    or its driver is missing; fail instead under ``REQUIRE_BROWSER`` (``.ci/run`` sets it,
    as a skip there would hide a broken install)."""
    if CHROMIUM is not None and CHROMEDRIVER is not None:
        return
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError("REQUIRE_BROWSER is set but chromium or chromedriver is missing")
    pytest.skip(
        "headless Chromium and chromedriver are not installed (Debian: apt-get install"
        " chromium chromium-driver); .ci/run installs them",
        allow_module_level=True,
    )


@contextmanager
def headless_chromium(window_size: str = "1200,900") -> Iterator[Any]:
    """A headless Chromium driver that resolves no host but this machine."""
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={window_size}",
        # No outside network: any host but this machine fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, name: str) -> None:
    """Save a screenshot of the page as ``test-artifacts/browser/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def click_and_wait(driver: Any, element_id: str, timeout_s: float = 20) -> None:
    """Click the element (scrolled into view) and wait until the next page is there: the
    old page's root element is gone."""
    by = pytest.importorskip("selenium.webdriver.common.by").By
    wait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait
    old = driver.find_element(by.TAG_NAME, "html")
    target = driver.find_element(by.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
    target.click()
    wait(driver, timeout_s).until(lambda d: _stale(old))


def _stale(element: Any) -> bool:
    try:
        element.is_enabled()
    except Exception:  # selenium's StaleElementReferenceException: the page was replaced
        return True
    return False
