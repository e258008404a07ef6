"""Bad input through the whole app (quart-trio's test client, a real PostgreSQL): each case
of issue 19 is a clear 400 (the APIs' JSON error body; on the web forms, a form error on
the re-rendered page), never a 500 and never a logged traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.support.accounts_app import BROWSER, CSRF, PASSWORD, accounts_app
from tests.support.form_errors import form_error
from tests.support.pg_admin import admin

pytestmark = pytest.mark.integration

EMAIL = "user@example.com"
NUL_EMAIL = "us\x00er@example.com"
#: A lone surrogate as JSON text: orjson.dumps refuses to write one, so the bodies are built
#: by hand (`\ud800` is a valid JSON escape that names no character).
SURROGATE = "\\ud800"
#: The same in a form: the UTF-8-style bytes of U+D800, which are not valid UTF-8.
SURROGATE_FORM = "%ED%A0%80"
JSON = {"Content-Type": "application/json"}
AUTH_ROUTES = ["/api/register/", "/api/login/", "/api/refresh/", "/api/logout/", "/api/me/"]


@pytest.fixture
async def app(empty_db: str) -> AsyncIterator[Any]:
    async with accounts_app(empty_db).test_app() as test_app:
        yield test_app


@pytest.fixture
def no_traceback(caplog: pytest.LogCaptureFixture) -> Any:
    """After the test: nothing was logged at ERROR (the app logs every 500 so)."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def send(client: Any, method: str, path: str, raw: bytes, **headers: str) -> Any:
    response = await client.open(path, method=method, data=raw, headers={**JSON, **headers})
    return response.status_code, await response.get_json()


async def access_token(client: Any) -> str:
    body = {"email": EMAIL, "password": PASSWORD}
    assert (await client.post("/api/register/", json=body)).status_code == 201
    response = await client.post("/api/login/", json=body)
    return str((await response.get_json())["access_token"])


def assert_json_400(status: int, body: Any) -> None:
    assert status == 400, body
    assert body["error"] == "invalid"
    assert body["detail"]


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/api/register/", {"email": NUL_EMAIL, "password": PASSWORD}),
        ("/api/login/", {"email": NUL_EMAIL, "password": PASSWORD}),
        ("/api/register/", {"email": "user\x01@example.com", "password": PASSWORD}),
        ("/api/register/", {"email": EMAIL, "password": PASSWORD, "username": "a\x00b"}),
    ],
    ids=["register-email", "login-email", "register-email-control", "register-username"],
)
async def test_nul_or_control_characters_in_the_api_are_a_400(
    app: Any, no_traceback: None, path: str, fields: dict[str, str]
) -> None:
    assert_json_400(*await send(app.test_client(), "POST", path, orjson.dumps(fields)))


async def test_nul_in_the_email_of_put_me_is_a_400(app: Any, no_traceback: None) -> None:
    client = app.test_client()
    token = await access_token(client)
    raw = orjson.dumps({"email": NUL_EMAIL})
    assert_json_400(*await send(client, "PUT", "/api/me/", raw, Authorization=f"Bearer {token}"))
    me = await client.get("/api/me/", headers={"Authorization": f"Bearer {token}"})
    assert (await me.get_json())["email"] == EMAIL  # nothing was changed


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/register/", '{"email": "%s@example.com", "password": "correct horse"}'),
        ("/api/register/", '{"email": "u@example.com", "password": "correct horse%s"}'),
        ("/api/register/",
         '{"email": "u@example.com", "password": "correct horse", "username": "%s"}'),
        ("/api/login/", '{"email": "%s@example.com", "password": "correct horse"}'),
        ("/api/login/", '{"email": "u@example.com", "password": "correct horse%s"}'),
        ("/api/me/", '{"email": "%s@example.com"}'),
        ("/api/me/", '{"username": "%s"}'),
    ],
    ids=["register-email", "register-password", "register-username", "login-email",
         "login-password", "me-email", "me-username"],
)  # fmt: skip
async def test_a_lone_surrogate_in_the_api_is_a_400(
    app: Any, no_traceback: None, path: str, template: str
) -> None:
    client = app.test_client()
    token = await access_token(client)
    method = "PUT" if path == "/api/me/" else "POST"
    raw = (template % SURROGATE).encode()
    assert_json_400(*await send(client, method, path, raw, Authorization=f"Bearer {token}"))


@pytest.mark.parametrize("path", [*AUTH_ROUTES, "/api/tasks/"])
@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "\xff\xfe@example.com", "password": "correct horse"}',
        b'{"refresh_token": "caf\xe9"}',
        "{}".encode("utf-16"),
        b"[" * 30_000 + b"]" * 30_000,
        b'{"email": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    ],
    ids=["invalid-utf8", "latin1", "utf16", "nested-30000", "nested-in-a-field"],
)
async def test_undecodable_json_is_a_400_on_every_json_route(
    app: Any, no_traceback: None, path: str, raw: bytes
) -> None:
    client = app.test_client()
    token = await access_token(client)
    method = "PUT" if path == "/api/me/" else "POST"
    status, body = await send(client, method, path, raw, Authorization=f"Bearer {token}")
    assert_json_400(status, body)
    assert "JSON" in body["detail"]


async def submit_raw(client: Any, path: str, encoded: str) -> tuple[int, str]:
    """POST an already url-encoded form (its CSRF token added) to ``path``."""
    page = await (await client.get(path, headers=BROWSER)).get_data(as_text=True)
    match = CSRF.search(page)
    assert match
    raw = f"csrf_token={quote(match.group(1))}&{encoded}".encode()
    headers = {**BROWSER, "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post(path, data=raw, headers=headers)
    return response.status_code, await response.get_data(as_text=True)


NUL = "%00"
GOOD_PASSWORD = quote(PASSWORD)
NOT_UTF8 = "not UTF-8"


@pytest.mark.parametrize(
    ("path", "encoded", "error"),
    [
        ("/register", f"email=us{NUL}er%40example.com&password={GOOD_PASSWORD}", "U+0000"),
        ("/login", f"email=us{NUL}er%40example.com&password={GOOD_PASSWORD}", "U+0000"),
        ("/register", f"email=user%40example.com&username=a%01b&password={GOOD_PASSWORD}",
         "none of them a control"),
        ("/register", f"email=user%40example.com&username=a{NUL}b&password={GOOD_PASSWORD}",
         "none of them a control"),
        ("/register", f"email=u{SURROGATE_FORM}%40example.com&password={GOOD_PASSWORD}", NOT_UTF8),
        ("/register", f"email=user%40example.com&password={GOOD_PASSWORD}{SURROGATE_FORM}",
         NOT_UTF8),
        ("/register",
         f"email=user%40example.com&username={SURROGATE_FORM}&password={GOOD_PASSWORD}", NOT_UTF8),
        # Not "wrong email or password": the bytes never were an email or a password.
        ("/login", f"email=u{SURROGATE_FORM}%40example.com&password={GOOD_PASSWORD}", NOT_UTF8),
        ("/login", f"email=user%40example.com&password={GOOD_PASSWORD}{SURROGATE_FORM}", NOT_UTF8),
    ],
    ids=["register-nul-email", "login-nul-email", "register-control-username",
         "register-nul-username", "register-surrogate-email", "register-surrogate-password",
         "register-surrogate-username", "login-surrogate-email", "login-surrogate-password"],
)  # fmt: skip
async def test_bad_characters_on_the_web_forms_are_a_form_error(
    app: Any, empty_db: str, no_traceback: None, path: str, encoded: str, error: str
) -> None:
    status, page = await submit_raw(app.test_client(), path, encoded)
    assert status == 400, page[:300]
    assert any(error in shown for shown in form_error(page)), form_error(page)
    async with admin(empty_db) as conn:
        assert await conn.fetchval("SELECT count(*) FROM accounts_users") == 0  # none stored
