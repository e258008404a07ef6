"""The accounts' changes that end a user's API log-ins (issue 19), through the real app: a new
password on the edit page and an admin's demotion revoke every refresh token of the user; a
web log-out does not (it ends the web sessions; an API log-in is a log-in of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.accounts_app import CSRF, PASSWORD, Browser, accounts_app, make_admin

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(empty_db: str) -> AsyncIterator[Any]:
    async with accounts_app(empty_db).test_app() as test_app:
        yield test_app


async def web_user(app: Any, email: str) -> tuple[Browser, int]:
    browser = Browser(app)
    assert (await browser.register(email, email.split("@")[0])).status_code == 302
    me = await api_login(app, email)
    answer = await app.test_client().get(
        "/api/me/", headers={"Authorization": f"Bearer {me['access_token']}"}
    )
    return browser, int((await answer.get_json())["id"])


async def api_login(app: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = await app.test_client().post(
        "/api/login/", json={"email": email, "password": password}
    )
    assert answer.status_code == 200
    return dict(await answer.get_json())


async def refreshes(app: Any, token: str) -> bool:
    answer = await app.test_client().post("/api/refresh/", json={"refresh_token": token})
    assert answer.status_code in (200, 401)
    return bool(answer.status_code == 200)


async def rotated(app: Any, token: str) -> str:
    answer = await app.test_client().post("/api/refresh/", json={"refresh_token": token})
    assert answer.status_code == 200
    return str((await answer.get_json())["refresh_token"])


async def web_log_out(browser: Browser) -> None:
    _, page, _ = await browser.get("/users")
    match = CSRF.search(page)
    assert match
    out = await browser.client.post(
        "/logout", form={"csrf_token": match.group(1)}, headers={"Accept": "text/html"}
    )
    assert out.status_code == 302
    assert (await browser.get("/users"))[0] == 302  # the web session ended


async def test_a_new_password_on_the_edit_page_revokes_every_refresh_token_of_the_user(
    app: Any,
) -> None:
    """A web log-out first, which ends the web sessions only (an API log-in is a log-in of
    its own); then a new password, which ends them all."""
    alice, alice_id = await web_user(app, "alice@example.com")
    _, _bob_id = await web_user(app, "bob@example.com")
    logins = [(await api_login(app, "alice@example.com"))["refresh_token"] for _ in range(2)]
    bobs = (await api_login(app, "bob@example.com"))["refresh_token"]
    await web_log_out(alice)
    logins = [await rotated(app, token) for token in logins]  # alive after the web log-out
    assert (await alice.login("alice@example.com")).status_code == 302
    changed = await alice.submit(
        f"/users/{alice_id}/edit",
        email="alice@example.com",
        username="alice",
        current_password=PASSWORD,
        new_password="brand new pw",
    )
    assert changed.status_code == 302
    assert [await refreshes(app, token) for token in logins] == [False, False]
    assert await refreshes(app, bobs)  # someone else's log-in lives on
    assert await refreshes(
        app, (await api_login(app, "alice@example.com", "brand new pw"))["refresh_token"]
    )


async def test_an_admins_demotion_revokes_every_refresh_token_of_the_user(
    app: Any, empty_db: str
) -> None:
    root, root_id = await web_user(app, "root@example.com")
    _, alice_id = await web_user(app, "alice@example.com")
    for user_id in (root_id, alice_id):
        await make_admin(empty_db, user_id)
    token = (await api_login(app, "alice@example.com"))["refresh_token"]
    assert (await root.login("root@example.com")).status_code == 302  # a session as an admin
    demoted = await root.submit(  # no is_admin field: the box unticked
        f"/users/{alice_id}/edit", email="alice@example.com", username="alice"
    )
    assert demoted.status_code == 302
    assert not await refreshes(app, token)
