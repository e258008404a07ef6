"""Token lifetimes editable by admins at run time: bounds, the page, every worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
import trio

from service.accounts.passwords import Passwords
from service.app import create_app
from service.auth_api.lifetimes import ACCESS, REFRESH, LifetimeError, parse
from service.platform.settings import Settings
from tests.support.accounts_app import BROWSER, CSRF
from tests.support.pg_admin import admin

ADMIN, PASSWORD = "boss@example.com", "correct horse"


@pytest.mark.parametrize(
    ("bound", "raw", "seconds"),
    [
        (ACCESS, "30", 30.0),
        (ACCESS, " 5 ", 5.0),
        (REFRESH, "30", 30 * 86400.0),
        (REFRESH, "0.5", 43200.0),
    ],
)
def test_entries_are_read_in_their_unit(bound: Any, raw: str, seconds: float) -> None:
    assert parse(bound, raw) == seconds


@pytest.mark.parametrize(
    ("bound", "raw", "message"),
    [
        (ACCESS, "4", "from 5 to 86400 seconds"),
        (ACCESS, "86401", "from 5 to 86400 seconds"),
        (REFRESH, "0.01", r"from 0\.0416667 to 365 days"),
        (REFRESH, "366", "to 365 days"),
        (ACCESS, "soon", "enter a number of seconds"),
        (ACCESS, "nan", "enter a number of seconds"),
        (REFRESH, "inf", "enter a number of days"),
    ],
)
def test_entries_out_of_bounds_are_refused_with_the_bounds(
    bound: Any, raw: str, message: str
) -> None:
    with pytest.raises(LifetimeError, match=message):
        parse(bound, raw)


def app_on(dsn: str) -> Any:
    @asynccontextmanager
    async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
        yield []

    settings = Settings.from_env({"DATABASE_URL": dsn, "SECRET_KEY": "k" * 40})
    return create_app(settings, open_sources=no_sources, passwords=Passwords.cheap())


async def register(client: Any, email: str) -> None:
    response = await client.post("/api/register/", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201


async def log_in_page(client: Any, email: str) -> None:
    page = await (await client.get("/login", headers=BROWSER)).get_data(as_text=True)
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": token, "email": email, "password": PASSWORD, "next": "/"}
    assert (await client.post("/login", form=form, headers=BROWSER)).status_code == 302


async def access_lifetime(client: Any, email: str) -> int:
    response = await client.post("/api/login/", json={"email": email, "password": PASSWORD})
    claims = jwt.decode(
        (await response.get_json())["access_token"], options={"verify_signature": False}
    )
    return int(claims["exp"] - claims["iat"])


@pytest.mark.integration
async def test_an_admin_changes_a_lifetime_and_every_worker_uses_it_for_new_logins(
    empty_db: str,
) -> None:
    first, second = app_on(empty_db), app_on(empty_db)  # two workers on one database
    async with first.test_app() as worker_1, second.test_app() as worker_2:
        client = worker_1.test_client()
        await register(client, ADMIN)
        await register(client, "plain@example.com")
        async with admin(empty_db) as conn:
            await conn.execute(f"UPDATE accounts_users SET is_admin = true WHERE email = '{ADMIN}'")
        assert await access_lifetime(client, ADMIN) == 30  # the default

        anonymous = await worker_1.test_client().get("/admin/settings", headers=BROWSER)
        assert anonymous.status_code == 302
        plain = worker_1.test_client()
        await log_in_page(plain, "plain@example.com")
        assert (await plain.get("/admin/settings", headers=BROWSER)).status_code == 403

        boss = worker_1.test_client()
        await log_in_page(boss, ADMIN)
        page = await (await boss.get("/admin/settings", headers=BROWSER)).get_data(as_text=True)
        assert 'value="30"' in page
        assert "seconds" in page
        assert "days" in page
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        refused = await boss.post(
            "/admin/settings",
            form={"csrf_token": token, "access": "2", "refresh": "30"},
            headers=BROWSER,
        )
        assert refused.status_code == 400
        assert "from 5 to 86400 seconds" in await refused.get_data(as_text=True)
        saved = await boss.post(
            "/admin/settings",
            form={"csrf_token": token, "access": "90", "refresh": "7"},
            headers=BROWSER,
        )
        assert saved.status_code == 302
        assert await access_lifetime(client, ADMIN) == 90  # this worker: at once
        other = worker_2.test_client()
        with trio.fail_after(10):  # the other worker: within its reload interval
            while await access_lifetime(other, ADMIN) != 90:  # noqa: ASYNC110 - no event crosses workers
                await trio.sleep(0.2)
