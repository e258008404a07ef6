"""The rules of a username and a password hold on every path that takes one: the web's
register and edit forms, the auth API's register and ``PUT /api/me/``, a users file and
the seeding's ``ADMIN_PASSWORD``. Each path is probed with the same inputs and must give
the same verdict (and, for passwords, state the rule in the same words)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from service.accounts.seeding import SeedingError, SeedPlan
from service.accounts.users_file import UsersFileError, parse_users
from tests.support.accounts_app import PASSWORD, Browser, accounts_app
from tests.support.form_errors import form_error

#: Every path states the password rule in these words.
PASSWORD_RULE = "8 to 1,024 characters"

#: Passwords, and whether every path takes them. 1,000 four-byte characters are 4,000 bytes of
#: UTF-8: the rule counts characters (what a person counts), never bytes.
PASSWORDS = {
    "\U0001f600" * 1000: True,
    "\U0001f600" * 1024: True,
    "\U0001f600" * 1025: False,
    "a" * 1025: False,
    "\U0001f600" * 8: True,
    "1234567": False,
    " " * 8: True,  # spaces are characters like any other
    " ": False,
}

#: Usernames, and whether every path takes them: no control (Cc), format (Cf: U+202E
#: turns the text around it right to left, U+200B and U+FEFF are invisible), surrogate,
#: private-use or unassigned character, no line or paragraph separator.
USERNAMES = {
    "a\u202eb": False,  # RIGHT-TO-LEFT OVERRIDE
    "a\u200bb": False,  # ZERO WIDTH SPACE
    "\ufeffab": False,  # ZERO WIDTH NO-BREAK SPACE (a byte order mark)
    "a\x00b": False,
    "a\u2028b": False,  # LINE SEPARATOR
    "a\u2029b": False,  # PARAGRAPH SEPARATOR
    "a\ue000b": False,  # private use
    "a\u0378b": False,  # unassigned
    "Zo\u00eb": True,
    "\u674e": True,
    "John Smith": True,
    "": True,
}


def shown(text: str) -> str:
    return repr(text) if len(text) < 12 else f"{text[:1]!r} * {len(text)}"


@pytest.fixture
async def app(empty_db: str) -> AsyncIterator[Any]:
    # Every probe registers a user from the same client address.
    async with accounts_app(empty_db, REGISTER_RATE_LIMIT="100000/minute").test_app() as test_app:
        yield test_app


_serial = iter(range(10**6))


def new_email() -> str:
    return f"rule{next(_serial)}@example.com"


async def api_register(app: Any, **fields: str) -> tuple[bool, str]:
    body = {"email": new_email(), "password": PASSWORD, **fields}
    response = await app.test_client().post("/api/register/", json=body)
    answer = await response.get_json()
    assert response.status_code in {201, 400}, answer
    return response.status_code == 201, answer.get("detail", "")


async def web_register(app: Any, **fields: str) -> tuple[bool, str]:
    form = {"email": new_email(), "username": "", "password": PASSWORD, **fields}
    response = await Browser(app).submit("/register", **form)
    assert response.status_code in {302, 400}
    return response.status_code == 302, " ".join(
        html.unescape(error) for error in form_error(await response.get_data(as_text=True))
    )


async def web_edit(app: Any, **fields: str) -> tuple[bool, str]:
    browser = Browser(app)
    email = new_email()
    response = await browser.submit("/register", email=email, username="", password=PASSWORD)
    assert response.status_code == 302
    _, page, _ = await browser.get("/users")
    user_id = page.split(f">{email}<")[0].rsplit('href="/users/', 1)[1].split('"')[0]
    path = f"/users/{user_id}/edit"
    form = {"email": email, "username": "", "current_password": PASSWORD, **fields}
    response = await browser.submit(path, **form)
    assert response.status_code in {302, 400}
    return response.status_code == 302, " ".join(
        html.unescape(error) for error in form_error(await response.get_data(as_text=True))
    )


async def api_put_me(app: Any, **fields: str) -> tuple[bool, str]:
    client = app.test_client()
    credentials = {"email": new_email(), "password": PASSWORD}
    assert (await client.post("/api/register/", json=credentials)).status_code == 201
    tokens = await (await client.post("/api/login/", json=credentials)).get_json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = await client.put("/api/me/", json=fields, headers=auth)
    answer = await response.get_json()
    assert response.status_code in {200, 400}, answer
    return response.status_code == 200, answer.get("detail", "")


async def users_file(_app: Any, **fields: str) -> tuple[bool, str]:
    user = {"email": new_email(), "password": PASSWORD, **fields}
    try:
        parse_users(orjson.dumps([user]))
    except UsersFileError as exc:
        return False, str(exc)
    return True, ""


async def admin_password(_app: Any, **fields: str) -> tuple[bool, str]:
    try:
        SeedPlan.from_env({"ADMIN_PASSWORD": fields["password"]})
    except SeedingError as exc:
        return False, str(exc)
    return True, ""


Path = Callable[..., Awaitable[tuple[bool, str]]]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "field"),
    [
        (api_register, "password"),
        (web_register, "password"),
        (web_edit, "new_password"),
        (users_file, "password"),
        (admin_password, "password"),
    ],
    ids=["api-register", "web-register", "web-edit", "users-file", "admin-password"],
)
async def test_every_path_counts_a_password_in_characters(app: Any, path: Path, field: str) -> None:
    verdicts, errors = {}, []
    for password in PASSWORDS:
        accepted, error = await path(app, **{field: password})
        verdicts[shown(password)] = accepted
        errors += [] if accepted else [error]
    assert verdicts == {shown(password): ok for password, ok in PASSWORDS.items()}
    assert [error for error in errors if PASSWORD_RULE not in error] == []


@pytest.mark.integration
@pytest.mark.parametrize(
    "path",
    [api_register, api_put_me, web_register, web_edit, users_file],
    ids=["api-register", "api-put-me", "web-register", "web-edit", "users-file"],
)
async def test_every_path_refuses_invisible_and_control_characters_in_a_username(
    app: Any, path: Path
) -> None:
    verdicts, errors = {}, []
    for username in USERNAMES:
        accepted, error = await path(app, username=username)
        verdicts[ascii(username)] = accepted
        errors += [] if accepted else [error]
    assert verdicts == {ascii(username): ok for username, ok in USERNAMES.items()}
    assert [error for error in errors if "username" not in error.lower()] == []


@pytest.mark.integration
async def test_a_password_of_spaces_logs_in_on_the_web_and_the_api(app: Any) -> None:
    spaces = " " * 8
    for register in (web_register, api_register):
        email = new_email()
        assert await register(app, email=email, password=spaces) == (True, "")
        assert (await Browser(app).login(email, spaces)).status_code == 302
        credentials = {"email": email, "password": spaces}
        assert (await app.test_client().post("/api/login/", json=credentials)).status_code == 200
