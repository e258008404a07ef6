"""The platform's pages: the index, and errors as HTML for browsers, JSON for programs."""

from __future__ import annotations

import pytest
from quart_trio import QuartTrio

from tests.support.fake_sources_app import app_with

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def app() -> QuartTrio:
    return app_with()


async def test_index_lists_every_capability_with_a_link(app: QuartTrio) -> None:
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/", headers=BROWSER)
        page = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    for path in ("/data", "/ready", "/health"):
        assert f'href="{path}"' in page
    assert "/static/bootstrap/css/bootstrap.min.css" in page


async def test_a_browser_gets_a_styled_404_page(app: QuartTrio) -> None:
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/no/such/page", headers=BROWSER)
        page = await response.get_data(as_text=True)
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
    assert "404" in page
    assert "Not Found" in page
    assert 'href="/"' in page  # back to the index


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/no/such/page", {}),  # no preference stated (curl, httpx): JSON
        ("/no/such/page", {"Accept": "application/json"}),
        ("/data/1", BROWSER),  # the fan-out's paths are for programs
        ("/api/nothing", BROWSER),
    ],
)
async def test_programs_keep_getting_json_errors(
    app: QuartTrio, path: str, headers: dict[str, str]
) -> None:
    async with app.test_app() as test_app:
        response = await test_app.test_client().get(path, headers=headers)
        body = await response.get_json()
    assert response.status_code == 404
    assert body["error"] == "not_found"


async def test_an_unexpected_error_is_a_500_page_without_a_traceback(app: QuartTrio) -> None:
    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals")

    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/boom", headers=BROWSER)
        page = await response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.content_type.startswith("text/html")
    assert "secret internals" not in page
    assert "Traceback" not in page
