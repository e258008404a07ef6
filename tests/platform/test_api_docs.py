"""The OpenAPI document and the /docs page (offline: every asset from this server)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from quart_trio import QuartTrio

from tests.support.fake_sources_app import app_with


@pytest.fixture
def app() -> QuartTrio:
    return app_with()


async def openapi(app: QuartTrio) -> dict[str, Any]:
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = await response.get_json()
    return document


async def test_every_endpoint_is_documented_with_schemas_and_examples(app: QuartTrio) -> None:
    document = await openapi(app)
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    expected = {
        ("/api/register/", "post"): (201, True),
        ("/api/login/", "post"): (200, True),
        ("/api/refresh/", "post"): (200, True),
        ("/api/logout/", "post"): (200, True),
        ("/api/me/", "get"): (200, False),
        ("/api/me/", "put"): (200, True),
        ("/data", "get"): (200, False),
        ("/health", "get"): (200, False),
        ("/ready", "get"): (200, False),
    }
    for (path, method), (status, has_body) in expected.items():
        operation = paths[path][method]
        assert str(status) in operation["responses"], (path, method)
        content = operation["responses"][str(status)]["content"]["application/json"]
        assert "schema" in content
        if has_body:
            assert "requestBody" in operation, (path, method)
    text = str(document)
    for example in ("user@example.com", "correct horse", "User logged out.", "Test 1"):
        assert example in text
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # A token response follows RFC 6749 5.1 (token_type, expires_in) besides the seed's fields.
    for path in ("/api/login/", "/api/refresh/"):
        content = paths[path]["post"]["responses"]["200"]["content"]["application/json"]
        pair = content["schema"]
        assert {"access_token", "token_type", "expires_in", "refresh_token"} <= set(
            pair["required"]
        )
        assert pair["properties"]["token_type"]["const"] == "Bearer"
        assert pair["properties"]["expires_in"]["type"] == "integer"


async def test_docs_page_loads_swagger_ui_from_this_server_only(app: QuartTrio) -> None:
    async with app.test_app() as test_app:
        client = test_app.test_client()
        page = await (await client.get("/docs")).get_data(as_text=True)
        # Scripts and stylesheets (the page's links are the site's navigation).
        assets = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', page)
        assert all(asset.startswith("/static/") for asset in assets), assets
        swagger = [asset for asset in assets if asset.startswith("/static/swagger-ui/")]
        assert len(swagger) == 2, assets  # its stylesheet and its bundle
        # A small file: quart-trio's test client stalls on bodies over about 80 KiB (the
        # browser test loads the big bundle from the real server).
        icon = await client.get("/static/swagger-ui/favicon-16x16.png")
        assert icon.status_code == 200
    assert "/openapi.json" in page
