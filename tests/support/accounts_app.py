"""Shared by several tests (from tests/accounts/test_pages.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from quart_trio import QuartTrio

from service.accounts.passwords import Passwords
from service.app import create_app
from service.platform.settings import Settings

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


PASSWORD = "correct horse"


def accounts_app(dsn: str, **env: str) -> QuartTrio:
    @asynccontextmanager
    async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
        yield []

    settings = Settings.from_env({"DATABASE_URL": dsn, "SECRET_KEY": "test-key-" + "x" * 32, **env})
    return create_app(settings, open_sources=no_sources, passwords=Passwords.cheap())


class Browser:
    """A client with its own cookies, that fills forms as a person would (CSRF included)."""

    def __init__(self, app: Any, scheme: str = "http") -> None:
        self.client = app.test_client()
        self.scheme = scheme

    async def get(self, path: str) -> tuple[int, str, Any]:
        response = await self.client.get(path, headers=BROWSER, scheme=self.scheme)
        return response.status_code, await response.get_data(as_text=True), response

    async def submit(self, path: str, form_page: str | None = None, **fields: str) -> Any:
        """POST ``fields`` to ``path`` with the CSRF token of the form page (default: path)."""
        _, page, _ = await self.get(form_page or path)
        match = CSRF.search(page)
        assert match, f"no CSRF token on {form_page or path}"
        data = {"csrf_token": match.group(1), **fields}
        return await self.client.post(path, form=data, headers=BROWSER, scheme=self.scheme)

    async def register(self, email: str, username: str = "") -> Any:
        return await self.submit("/register", email=email, username=username, password=PASSWORD)

    async def login(self, email: str, password: str = PASSWORD, next_: str = "") -> Any:
        return await self.submit("/login", email=email, password=password, next=next_)


async def make_admin(dsn: str, user_id: int) -> None:
    from tests.support.pg_admin import admin

    async with admin(dsn) as conn:
        await conn.execute(f"UPDATE accounts_users SET is_admin = true WHERE id = {user_id}")
