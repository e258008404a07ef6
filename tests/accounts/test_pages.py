"""The accounts' pages through the real app (quart-trio's test client) on a real PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.accounts.passwords import Passwords
from tests.support.accounts_app import BROWSER, CSRF, PASSWORD, Browser, accounts_app, make_admin

pytestmark = pytest.mark.integration


@dataclass
class Site:
    app: Any
    alice: int
    bob: int
    admin: int


@pytest.fixture
async def site(empty_db: str) -> AsyncIterator[Site]:
    app = accounts_app(empty_db)
    async with app.test_app() as test_app:
        ids = []
        for email in ("alice@example.com", "bob@example.com", "root@example.com"):
            browser = Browser(test_app)
            response = await browser.register(email, email.split("@")[0])
            assert response.status_code == 302
            _, page, _ = await browser.get("/users")
            ids.append(int(re.search(rf'href="/users/(\d+)">{email}<', page).group(1)))  # type: ignore[union-attr]
        await make_admin(empty_db, ids[2])
        yield Site(test_app, *ids)


async def as_user(site: Site, who: str) -> Browser:
    browser = Browser(site.app)
    if who != "anonymous":
        email = {
            "alice": "alice@example.com",
            "bob": "bob@example.com",
            "admin": "root@example.com",
        }[who]
        assert (await browser.login(email)).status_code == 302
    return browser


# Who may see what: anonymous users are sent to log in; a user edits and deletes only
# themself; an admin anyone.
MATRIX = [
    ("/users", {"anonymous": 302, "alice": 200, "bob": 200, "admin": 200}),
    ("/users/{alice}", {"anonymous": 302, "alice": 200, "bob": 200, "admin": 200}),
    ("/users/{alice}/edit", {"anonymous": 302, "alice": 200, "bob": 403, "admin": 200}),
    ("/users/{alice}/delete", {"anonymous": 302, "alice": 200, "bob": 403, "admin": 200}),
    ("/reports/users", {"anonymous": 302, "alice": 200, "bob": 200, "admin": 200}),
    ("/login", {"anonymous": 200, "alice": 200, "bob": 200, "admin": 200}),
    ("/register", {"anonymous": 200, "alice": 200, "bob": 200, "admin": 200}),
    ("/", {"anonymous": 200, "alice": 200, "bob": 200, "admin": 200}),
]


@pytest.mark.parametrize("who", ["anonymous", "alice", "bob", "admin"])
async def test_permission_matrix_of_every_page(site: Site, who: str) -> None:
    browser = await as_user(site, who)
    for template, expected in MATRIX:
        path = template.format(alice=site.alice)
        status, _, response = await browser.get(path)
        assert status == expected[who], (who, path)
        if status == 302:
            assert response.headers["Location"].startswith("/login?next=%2F")


@pytest.mark.parametrize("who", ["anonymous", "bob"])
async def test_posting_to_another_users_edit_or_delete_is_refused(site: Site, who: str) -> None:
    browser = await as_user(site, who)
    for action in ("edit", "delete"):
        response = await browser.client.post(
            f"/users/{site.alice}/{action}", form={"email": "x@example.com"}, headers=BROWSER
        )
        assert response.status_code == (302 if who == "anonymous" else 403), action
    admin_browser = await as_user(site, "admin")
    status, page, _ = await admin_browser.get(f"/users/{site.alice}")
    assert status == 200
    assert "alice@example.com" in page  # untouched


async def test_login_error_never_says_whether_the_email_exists(site: Site) -> None:
    browser = Browser(site.app)
    wrong = await browser.login("alice@example.com", "wrong password")
    unknown = await browser.login("nobody@example.com", "wrong password")
    assert wrong.status_code == unknown.status_code == 400
    bodies = [
        CSRF.sub("", await response.get_data(as_text=True)).replace("nobody@", "alice@")
        for response in (wrong, unknown)
    ]
    assert "Wrong email or password." in bodies[0]
    assert bodies[0] == bodies[1]  # the very same page


async def test_repeated_login_failures_are_answered_429(site: Site) -> None:
    browser = Browser(site.app)
    for _ in range(5):
        assert (await browser.login("alice@example.com", "wrong password")).status_code == 400
    blocked = await browser.login("alice@example.com", PASSWORD)  # even the right one, now
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "300"
    assert "Too many failed log-ins" in await blocked.get_data(as_text=True)


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\\evil.example", "https://evil.example/", "https:evil"]
)
async def test_login_follows_only_a_local_next(site: Site, target: str) -> None:
    response = await Browser(site.app).login("alice@example.com", next_=target)
    assert response.headers["Location"] == "/users"


async def test_login_follows_a_local_next(site: Site) -> None:
    browser = Browser(site.app)
    status, _, response = await browser.get(f"/users/{site.bob}")
    assert status == 302
    assert response.headers["Location"] == f"/login?next=%2Fusers%2F{site.bob}"
    _, login_page, _ = await browser.get(response.headers["Location"])
    assert f'value="/users/{site.bob}"' in login_page  # next travels in a hidden field
    answer = await browser.login("alice@example.com", next_=f"/users/{site.bob}")
    assert answer.headers["Location"] == f"/users/{site.bob}"


async def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    browser = await as_user(site, "alice")
    response = await browser.client.post(
        f"/users/{site.alice}/edit", form={"email": "new@example.com"}, headers=BROWSER
    )
    assert response.status_code == 400
    logout = await browser.client.post("/logout", form={}, headers=BROWSER)
    assert logout.status_code == 400


async def test_emails_are_unique_case_insensitively(site: Site) -> None:
    response = await Browser(site.app).register("ALICE@example.com")
    assert response.status_code == 400
    assert "exists already" in await response.get_data(as_text=True)


async def test_a_user_edits_their_profile_and_cannot_make_themself_admin(site: Site) -> None:
    browser = await as_user(site, "alice")
    path = f"/users/{site.alice}/edit"
    response = await browser.submit(path, email="alice2@example.com", username="Al", is_admin="y")
    assert response.status_code == 302
    _, page, _ = await browser.get(f"/users/{site.alice}")
    assert "alice2@example.com" in page
    assert 'badge text-bg-warning">admin' not in page.split("<main")[1]


async def test_a_new_password_needs_the_current_one(site: Site) -> None:
    browser = await as_user(site, "alice")
    path = f"/users/{site.alice}/edit"
    refused = await browser.submit(
        path, email="alice@example.com", current_password="nope", new_password="brand new pw"
    )
    assert refused.status_code == 400
    assert "current password is needed" in await refused.get_data(as_text=True)
    saved = await browser.submit(
        path, email="alice@example.com", current_password=PASSWORD, new_password="brand new pw"
    )
    assert saved.status_code == 302
    assert (await browser.get("/users"))[0] == 200  # this session stays logged in
    assert (await Browser(site.app).login("alice@example.com", "brand new pw")).status_code == 302


async def test_a_new_password_ends_the_users_other_sessions(site: Site) -> None:
    here, elsewhere = await as_user(site, "alice"), await as_user(site, "alice")
    await here.submit(
        f"/users/{site.alice}/edit",
        email="alice@example.com",
        current_password=PASSWORD,
        new_password="brand new pw",
    )
    assert (await here.get("/users"))[0] == 200
    assert (await elsewhere.get("/users"))[0] == 302


async def test_an_admin_grants_admin_rights_and_the_user_has_them_at_once(site: Site) -> None:
    bob = await as_user(site, "bob")
    assert (await bob.get(f"/users/{site.alice}/edit"))[0] == 403
    admin = await as_user(site, "admin")
    granted = await admin.submit(
        f"/users/{site.bob}/edit", email="bob@example.com", username="bob", is_admin="y"
    )
    assert granted.status_code == 302
    assert (await bob.get(f"/users/{site.alice}/edit"))[0] == 200  # his very next request


async def test_a_demoted_admin_loses_the_rights_on_the_next_request(site: Site) -> None:
    admin = await as_user(site, "admin")
    await admin.submit(f"/users/{site.bob}/edit", email="bob@example.com", is_admin="y")
    bob = await as_user(site, "bob")
    assert (await bob.get(f"/users/{site.alice}/edit"))[0] == 200
    await admin.submit(f"/users/{site.bob}/edit", email="bob@example.com")  # box unticked
    status, _, response = await bob.get(f"/users/{site.alice}/edit")
    # Demotion ended his sessions: he logs in again, and then is a plain user.
    assert status == 302
    assert response.headers["Location"].startswith("/login")
    bob_again = await as_user(site, "bob")
    assert (await bob_again.get(f"/users/{site.alice}/edit"))[0] == 403


async def test_the_last_admin_can_neither_be_demoted_nor_deleted(site: Site) -> None:
    admin = await as_user(site, "admin")
    demoted = await admin.submit(f"/users/{site.admin}/edit", email="root@example.com")
    assert demoted.status_code == 409
    assert "last admin" in await demoted.get_data(as_text=True)
    deleted = await admin.submit(f"/users/{site.admin}/delete")
    assert deleted.status_code == 409
    assert "last admin" in await deleted.get_data(as_text=True)
    assert (await admin.get("/users"))[0] == 200  # still there, still logged in


async def test_a_deleted_users_session_stops_at_once(site: Site) -> None:
    alice = await as_user(site, "alice")
    other_alice = await as_user(site, "alice")  # a second session of hers
    confirm, page, _ = await alice.get(f"/users/{site.alice}/delete")
    assert confirm == 200
    assert "Delete alice@example.com?" in page
    response = await alice.submit(f"/users/{site.alice}/delete")
    assert response.status_code == 302
    status, _, redirect = await other_alice.get("/users")
    assert status == 302
    assert redirect.headers["Location"].startswith("/login")
    assert (await Browser(site.app).login("alice@example.com")).status_code == 400


async def test_an_admin_deletes_another_user(site: Site) -> None:
    admin = await as_user(site, "admin")
    response = await admin.submit(f"/users/{site.bob}/delete")
    assert response.status_code == 302
    assert (await admin.get(f"/users/{site.bob}"))[0] == 404


async def test_users_are_listed_25_a_page(site: Site, empty_db: str) -> None:
    from service.accounts.fake_users import fake_users
    from service.accounts.store import load_users

    await load_users(empty_db, fake_users(30, seed=3), Passwords.cheap())
    browser = await as_user(site, "alice")
    _, first, _ = await browser.get("/users")
    _, second, _ = await browser.get("/users?page=2")
    assert "Page 1 of 2" in first
    assert first.count('<tr>\n    <td><a href="/users/') == 25
    assert second.count('<tr>\n    <td><a href="/users/') == 8


async def test_the_report_counts_users_domains_and_admins(site: Site) -> None:
    browser = await as_user(site, "alice")
    status, page, _ = await browser.get("/reports/users")
    assert status == 200
    assert '<strong id="total-users">3</strong>' in page
    assert '<strong id="total-admins">1</strong>' in page
    assert "<td>example.com</td><td>3</td>" in page


async def test_logout_ends_the_session_even_for_a_kept_copy_of_the_cookie(site: Site) -> None:
    browser = await as_user(site, "alice")
    kept = [c for c in browser.client.cookie_jar if c.name == "QUART_AUTH"]
    assert kept
    response = await browser.submit("/logout", form_page="/users")
    assert response.status_code == 302
    assert (await browser.get("/users"))[0] == 302
    replay = Browser(site.app)
    replay.client.cookie_jar.set_cookie(kept[0])
    assert (await replay.get("/users"))[0] == 302  # the copied cookie no longer works


@pytest.mark.parametrize("secure", [False, True])
async def test_session_cookies_are_httponly_lax_and_secure_when_configured(
    empty_db: str, secure: bool
) -> None:
    app = accounts_app(empty_db, COOKIE_SECURE="1" if secure else "0")
    async with app.test_app() as test_app:
        # A Secure cookie travels over HTTPS only: the client speaks HTTPS then.
        browser = Browser(test_app, "https" if secure else "http")
        response = await browser.register("dana@example.com")
    cookies = response.headers.get_all("Set-Cookie")
    auth = [c for c in cookies if c.startswith("QUART_AUTH=")]
    session = [c for c in cookies if c.startswith("session=")]
    assert auth
    assert session
    for cookie in auth + session:
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


async def test_an_id_past_bigint_or_a_huge_page_is_not_a_server_error(site: Site) -> None:
    admin = await as_user(site, "admin")
    huge = "99999999999999999999"
    assert (await admin.get(f"/users/{huge}"))[0] == 404
    assert (await admin.get(f"/users/{huge}/edit"))[0] == 404
    status, page, _ = await admin.get(f"/users?page={huge}")
    assert status == 200
    assert "Page 1000000 of 1" in page
