"""One site: every HTML page has the one navigation bar (the product's name, the pages the
viewer may open, the logged-in user with log-out, or log-in links), the index speaks to
the viewer it has, the register form states the password rule, and a cached search page
never shows one viewer's name to another (nor any name to a visitor not logged in).

The real app served by hypercorn on a real PostgreSQL, a real valkey (the search's page
cache) and the fake Stack Exchange API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.accounts.passwords import Passwords
from service.accounts.rules import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from service.app import create_app
from service.platform.navigation import PRODUCT_NAME
from service.platform.settings import Settings
from tests.support.accounts_app import make_admin
from tests.support.search_fixtures import BROWSER, running_fake_api, serving, write_ini

pytestmark = pytest.mark.integration

PASSWORD = "correct horse"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
NAV = re.compile(r'<nav [^>]*id="site-nav".*?</nav>', re.S)
NAV_LINK = re.compile(r'<a class="nav-link[^"]*"[^>]*href="([^"]+)">([^<]+)</a>')
NAV_USER = re.compile(r'id="nav-user" href="/users/(\d+)">([^<]+)</a>')
LOG_IN_LINK = re.compile(r'<a class="btn [^"]*" href="([^"]+)">([^<]+)</a>')
TITLE = re.compile(r"<title>(.*?)</title>", re.S)
REGISTERING_ADDRESS = "127.0.40.1"

#: The navigation's links (path, label) for each kind of viewer.
ANONYMOUS_LINKS = [("/search", "Search"), ("/docs", "API docs")]
USER_LINKS = [("/users", "Users"), ("/reports/users", "Report"), *ANONYMOUS_LINKS]
ADMIN_LINKS = [*USER_LINKS[:2], ("/admin/settings", "Settings"), *ANONYMOUS_LINKS]


class Visitor:
    """A browser of its own (its own cookies) that fills forms as a person would."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def submit(self, path: str, form_page: str | None = None, **fields: str) -> Any:
        page = await self.get(form_page or path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {form_page or path}"
        return await self.client.post(path, data={"csrf_token": match.group(1), **fields})


@dataclass
class Site:
    url: str
    dsn: str
    query: str
    visitors: dict[str, Visitor]
    ids: dict[str, int]
    names: dict[str, str]


@asynccontextmanager
async def visitor(url: str) -> AsyncIterator[Visitor]:
    # An address of their own: the session's valkey counts registrations per address.
    transport = httpx.AsyncHTTPTransport(local_address=REGISTERING_ADDRESS)
    async with httpx.AsyncClient(
        base_url=url, headers=BROWSER, timeout=30, transport=transport
    ) as client:
        yield Visitor(client)


@pytest.fixture
async def site(empty_db: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    @asynccontextmanager
    async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
        yield []

    async with running_fake_api() as (api_url, _fake):
        settings = Settings.from_env(
            {
                "DATABASE_URL": empty_db,
                "REDIS_URL": redis_url,
                "SECRET_KEY": "test-key-" + "x" * 32,
                "SEARCH_CONFIG": str(write_ini(tmp_path / "search.ini", api_url)),
                "REGISTER_RATE_LIMIT": "1000/minute",
            }
        )
        app = create_app(settings, open_sources=no_sources, passwords=Passwords.cheap())
        async with serving(app) as anonymous:
            url = str(anonymous.base_url)
            names = {"alice": "alice-viewer", "bob": "bob-viewer", "admin": "root-viewer"}
            visitors = {"anonymous": Visitor(anonymous)}
            ids = {}
            async with visitor(url) as alice, visitor(url) as bob, visitor(url) as admin:
                for who, one in (("alice", alice), ("bob", bob), ("admin", admin)):
                    registered = await one.submit(
                        "/register",
                        email=f"{who}@example.com",
                        username=names[who],
                        password=PASSWORD,
                    )
                    assert registered.status_code == 302, registered.text
                    found = NAV_USER.search((await one.get("/users")).text)
                    assert found, f"{who} is not shown as logged in"
                    ids[who] = int(found.group(1))
                    visitors[who] = one
                await make_admin(empty_db, ids["admin"])
                made = await anonymous.post("/search", data={"q": "trio nursery"})
                assert made.status_code == 303
                yield Site(url, empty_db, made.headers["Location"], visitors, ids, names)


def navigation(page: str) -> str:
    """The page's one navigation bar (it fails if there is none, or more than one)."""
    assert page.count('id="site-nav"') == 1
    found = NAV.search(page)
    assert found
    return found.group(0)


def nav_problems(site: Site, who: str, path: str, response: httpx.Response) -> list[str]:
    """What is wrong with the navigation of ``response`` for ``who`` (empty: nothing)."""
    page = response.text
    problems = []
    bars = page.count('id="site-nav"')
    if bars != 1:
        return [f"{who} {path}: {bars} navigation bars"]
    nav = navigation(page)
    title = TITLE.search(page)
    if title is None or not title.group(1).endswith(PRODUCT_NAME):
        problems.append(f"{who} {path}: title {title and title.group(1)!r}")
    if f'id="nav-brand" href="/">{PRODUCT_NAME}</a>' not in nav:
        problems.append(f"{who} {path}: no brand")
    expected = {"anonymous": ANONYMOUS_LINKS, "admin": ADMIN_LINKS}.get(who, USER_LINKS)
    links = NAV_LINK.findall(nav)
    if links != expected:
        problems.append(f"{who} {path}: links {links}")
    shown = NAV_USER.search(nav)
    if who == "anonymous":
        if shown or 'id="logout"' in nav:
            problems.append(f"{who} {path}: a user is shown")
        if LOG_IN_LINK.findall(nav) != [("/login", "Log in"), ("/register", "Register")]:
            problems.append(f"{who} {path}: no log-in links")
    else:
        if shown is None or shown.groups() != (str(site.ids[who]), site.names[who]):
            problems.append(f"{who} {path}: user shown {shown and shown.groups()}")
        if 'id="logout"' not in nav or LOG_IN_LINK.search(nav):
            problems.append(f"{who} {path}: no log-out, or log-in links")
    return problems


async def test_every_page_has_the_one_navigation_for_each_viewer(site: Site) -> None:
    everyone = [
        ("/", 200),
        ("/login", 200),
        ("/register", 200),
        ("/search", 200),
        ("/search/queries", 200),
        (site.query, 200),
        (site.query + "?per_page=7", 400),  # the search's error page
        ("/docs", 200),
        ("/no/such/page", 404),
    ]
    problems, visited = [], 0
    for who, one in site.visitors.items():
        pages = list(everyone)
        if who != "anonymous":
            me = site.ids[who]
            pages += [
                ("/users", 200),
                (f"/users/{me}", 200),
                (f"/users/{me}/edit", 200),
                (f"/users/{me}/delete", 200),
                ("/reports/users", 200),
                ("/admin/settings", 200 if who == "admin" else 403),
            ]
        for path, status in pages:
            response = await one.get(path)
            visited += 1
            if response.status_code != status:
                problems.append(f"{who} {path}: {response.status_code}, not {status}")
            problems += nav_problems(site, who, path, response)
    assert problems == []
    assert visited == 9 + 3 * 15


async def test_the_current_page_is_marked_in_the_navigation(site: Site) -> None:
    nav = navigation((await site.visitors["admin"].get(site.query)).text)
    assert '<a class="nav-link active" aria-current="page" href="/search">Search</a>' in nav
    assert nav.count("active") == 1


async def test_the_index_says_log_in_first_only_to_a_visitor_not_logged_in(site: Site) -> None:
    badges = {}
    for who in ("anonymous", "alice", "admin"):
        page = (await site.visitors[who].get("/")).text
        badges[who] = re.findall(r'<span class="badge [^"]* audience">([^<]+)</span>', page)
    assert badges == {
        "anonymous": ["log in first", "log in first", "for admins"],
        "alice": ["for admins"],
        "admin": [],
    }


async def test_the_register_form_states_the_password_rule(site: Site) -> None:
    page = (await site.visitors["anonymous"].get("/register")).text
    rule = f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS:,} characters."
    assert f'<div class="form-text" id="password-rule">{rule}</div>' in page
    assert 'aria-describedby="password-rule"' in page


async def test_the_navigations_log_out_button_logs_out_from_a_search_page(site: Site) -> None:
    alice = site.visitors["alice"]
    assert (await alice.get("/users")).status_code == 200
    out = await alice.submit("/logout", form_page="/search")  # the nav's is its only form
    assert out.status_code == 302
    assert (await alice.get("/users")).status_code == 302  # to the log-in page
    assert NAV_USER.search((await alice.get("/search")).text) is None


def names_on(site: Site, page: str) -> set[str]:
    """Whose names or emails ``page`` shows."""
    return {who for who, name in site.names.items() if name in page or f"{who}@example.com" in page}


async def test_a_cached_search_page_never_shows_a_viewers_name_to_another(site: Site) -> None:
    # Logged-in viewers ask first (their pages must not be kept), then a visitor not logged
    # in (a page of their own, then the cached one), then the viewers again.
    order = ("alice", "bob", "anonymous", "anonymous", "bob", "alice")
    leaks, caching = [], []
    for path in ("/search", "/search/queries", site.query):
        for who in order:
            response = await site.visitors[who].get(path)
            assert response.status_code == 200, (who, path)
            names = names_on(site, response.text)
            if names != {who} - {"anonymous"}:
                leaks.append((who, path, names))
            caching.append(
                (
                    response.headers["X-Cache"],
                    "private" in response.headers.get("Cache-Control", ""),
                )
            )
    assert leaks == []
    viewer, first, cached = ("BYPASS", True), ("MISS", False), ("HIT", False)
    assert caching == [viewer, viewer, first, cached, viewer, viewer] * 3
