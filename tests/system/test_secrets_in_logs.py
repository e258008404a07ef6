"""No secret reaches the log: the real service (2 workers) with HTTP sources whose URLs hold a
password and an API key, a database URL with a password, the search's API key, driven
through every capability's error paths; then its whole output is searched for each secret
and for a password hash."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio
from sqlalchemy.engine import make_url

from service.search.fake_api import FakeApiState
from tests.support.json_server import JsonServer
from tests.support.search_fixtures import running_fake_api, write_ini
from tests.support.service_runner import ServiceRunner
from tests.support.task_images import b64, image_bytes
from tests.support.tcp_proxy import closed_port

pytestmark = pytest.mark.integration

SOURCE_PASSWORD = "Src-pw-7b1f0e"
SOURCE_KEY = "Src-key-42c9aa"
DB_PASSWORD = "Db-pw-9d03e1"
SEARCH_KEY = "Search-key-5e8b77"
USER_PASSWORD = "User-pw-c4a2f6"
ADMIN_PASSWORD = "Admin-pw-0f6d3b"
SECRETS = {
    "an HTTP source's password": SOURCE_PASSWORD,
    "an HTTP source's API key": SOURCE_KEY,
    "the database password": DB_PASSWORD,
    "the search's API key": SEARCH_KEY,
    "a user's password": USER_PASSWORD,
    "the admin's password": ADMIN_PASSWORD,
    "an argon2 hash": "$argon2",
}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def sources_toml(port: int, dead_port: int) -> str:
    def http(name: str, path: str, where: int = port, extra: str = "") -> str:
        url = f"http://svc:{SOURCE_PASSWORD}@127.0.0.1:{where}{path}?api_key={SOURCE_KEY}&x=1"
        return f'[[source]]\nname = "{name}"\nkind = "http"\nurl = "{url}"\n{extra}\n'

    dead_dsn = f"postgresql://svc:{DB_PASSWORD}@127.0.0.1:{dead_port}/nowhere"
    return "\n".join(
        [
            http("ok", "/healthy"),
            http("error", "/error"),
            http("slow", "/slow", extra="timeout_s = 0.3"),
            http("garbage", "/garbage"),
            http("refused", "/healthy", where=dead_port),
            http("redirect", "/redirect"),
            '[[source]]\nname = "orm"\nkind = "orm"\ntable = "data_1"\n',
            f'[[source]]\nname = "dead_db"\nkind = "sql"\ntable = "data_2"\ndsn = "{dead_dsn}"\n',
        ]
    )


async def drive_every_error_path(client: httpx.AsyncClient) -> Counter[tuple[str, int]]:
    """Good and bad requests to every capability; (what, status) of each answer."""
    seen: Counter[tuple[str, int]] = Counter()

    async def call(what: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError:  # a broken answer (another part of issue 19): no status
            seen[(what, -1)] += 1
            return httpx.Response(599)
        seen[(what, response.status_code)] += 1
        return response

    # The fan-out: sources that fail every way, and its readiness check.
    for _ in range(3):
        await call("data", "GET", "/data")
    await call("ready", "GET", "/ready")

    # The auth API: register, a taken email, bodies the database refuses.
    email = "victim@example.com"
    await call(
        "register", "POST", "/api/register/", json={"email": email, "password": USER_PASSWORD}
    )
    await call(
        "register taken", "POST", "/api/register/", json={"email": email, "password": USER_PASSWORD}
    )
    raw = {"Content-Type": "application/json"}
    for body in (
        '{"email": "nul\\u0000@example.com", "password": "%s"}',
        '{"email": "other@example.com", "password": "%s", "username": "\\ud800"}',
        '{"email": "x\\ud800@example.com", "password": "%s"}',
    ):
        await call(
            "register odd", "POST", "/api/register/", content=body % USER_PASSWORD, headers=raw
        )
    # Log-ins: a wrong password until the throttle answers, then the right one.
    for _ in range(6):
        await call(
            "login wrong",
            "POST",
            "/api/login/",
            json={"email": email, "password": USER_PASSWORD + "x"},
        )
    await call(
        "login unknown",
        "POST",
        "/api/login/",
        json={"email": "nobody@example.com", "password": USER_PASSWORD},
    )
    second = "second@example.com"
    await call(
        "register", "POST", "/api/register/", json={"email": second, "password": USER_PASSWORD}
    )
    tokens = (
        await call(
            "login", "POST", "/api/login/", json={"email": second, "password": USER_PASSWORD}
        )
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    # Bad tokens.
    await call("me bad token", "GET", "/api/me/", headers={"Authorization": "Bearer nonsense"})
    await call("refresh bad", "POST", "/api/refresh/", json={"refresh_token": "nonsense"})
    await call("logout bad", "POST", "/api/logout/", json={"refresh_token": "nonsense"})
    # Updates the database refuses (a failed UPDATE), and a taken email.
    await call(
        "me odd",
        "PUT",
        "/api/me/",
        content='{"email": "nul\\u0000@example.com"}',
        headers={**raw, **bearer},
    )
    await call("me taken", "PUT", "/api/me/", json={"email": email}, headers=bearer)
    # The task API: bad uploads, a good one, odd ranges.
    await call("task bad b64", "POST", "/api/tasks/", json={"image": "!!!"}, headers=bearer)
    await call(
        "task not image",
        "POST",
        "/api/tasks/",
        json={"image": b64(b"not an image")},
        headers=bearer,
    )
    half_jpeg = image_bytes("JPEG", size=(64, 64))
    await call(
        "task cut jpeg",
        "POST",
        "/api/tasks/",
        json={"image": b64(half_jpeg[: len(half_jpeg) // 2])},
        headers=bearer,
    )
    created = await call(
        "task", "POST", "/api/tasks/", json={"image": b64(image_bytes())}, headers=bearer
    )
    if created.status_code == 201:
        image = f"/api/tasks/{created.json()['id']}/image"
        await call("range suffix", "GET", image, headers={**bearer, "Range": "bytes=-5"})
        await call("range past", "GET", image, headers={**bearer, "Range": "bytes=0-99999"})
    await call(
        "refresh good", "POST", "/api/refresh/", json={"refresh_token": tokens["refresh_token"]}
    )

    # The web pages: register (taken, odd), log in (wrong), with their CSRF tokens.
    async def form(what: str, path: str, **fields: str) -> None:
        page = await client.get(path, headers=BROWSER)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path}"
        await call(
            what, "POST", path, data={"csrf_token": match.group(1), **fields}, headers=BROWSER
        )

    await form("web register taken", "/register", email=email, password=USER_PASSWORD)
    await form(
        "web register odd",
        "/register",
        email="web@example.com",
        username="a\x01b",
        password=USER_PASSWORD,
    )
    await form("web register nul", "/register", email="nul\x00@example.com", password=USER_PASSWORD)
    await form("web login wrong", "/login", email=second, password=USER_PASSWORD + "y")
    await form("web login nul", "/login", email="n\x00@example.com", password=USER_PASSWORD)
    await form("web login admin", "/login", email="admin@example.com", password=ADMIN_PASSWORD)

    # The search: a new query (the API is called with its key), a bad one.
    created_query = await call(
        "search", "POST", "/search", data={"q": "trio nursery"}, headers=BROWSER
    )
    location = created_query.headers.get("Location")
    if location:
        await call("search results", "GET", location, headers=BROWSER)
    await call("search bad", "POST", "/search", data={"q": "a\x1bb"}, headers=BROWSER)
    return seen


async def test_no_secret_and_no_password_hash_reaches_the_log(
    empty_db_for_module: str, redis_url: str, tmp_path: Path
) -> None:
    dsn = make_url(empty_db_for_module)
    if dsn.password is None:
        # The embedded PostgreSQL trusts local connections: the password is sent nowhere,
        # but it is in the URL every part of the service is given, which is what may leak.
        dsn = dsn.set(password=DB_PASSWORD)
    json_server = JsonServer([{"id": 1, "name": "one"}], slow_s=3.0)
    fake_api = FakeApiState()
    async with trio.open_nursery() as nursery, running_fake_api(fake_api) as (api_url, _):
        await nursery.start(json_server.serve)
        sources = tmp_path / "sources.toml"
        sources.write_text(sources_toml(json_server.port, closed_port()), encoding="utf-8")
        ini = write_ini(tmp_path / "search.ini", api_url, api={"key": SEARCH_KEY})
        env = {
            "DATABASE_URL": dsn.render_as_string(hide_password=False),
            "SOURCES_FILE": str(sources),
            "SEARCH_CONFIG": str(ini),
            "REDIS_URL": redis_url,
            "SECRET_KEY": "secrets-in-logs-test-key-" + "x" * 32,
            "IMAGES_DIR": str(tmp_path / "images"),
            "SEED_USERS": "0",
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "REGISTER_RATE_LIMIT": "1000/minute",  # the registrations' errors, not the limit
        }
        runner = ServiceRunner(env, workers=2)
        try:
            url = await trio.to_thread.run_sync(runner.wait_started)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                seen = await drive_every_error_path(client)
            await trio.sleep(0.5)  # the last lines written
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(runner.stop)
        nursery.cancel_scope.cancel()
    log = runner.output.decode("utf-8", "replace")
    # The paths were taken: the sources failed and were logged, the throttle answered.
    assert "source error failed" in log, log[-3000:]
    assert seen[("login wrong", 429)] >= 1, seen
    assert seen[("register taken", 409)] == 1, seen
    assert seen[("search", 303)] == 1, seen
    assert fake_api.calls >= 1
    leaked = {what: log.count(secret) for what, secret in SECRETS.items() if secret in log}
    lines = [line for line in log.splitlines() if any(s in line for s in SECRETS.values())]
    assert not leaked, f"{leaked}; for example:\n" + "\n".join(line[:300] for line in lines[:8])
