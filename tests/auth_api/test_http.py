"""The auth API over HTTP (quart-trio's test client), on a real PostgreSQL: the whole flow
and every error of the contract."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from service.accounts.passwords import Passwords
from service.app import create_app
from service.auth_api.access_tokens import AccessTokens
from service.auth_api.refresh_tokens import hash_refresh_token
from service.platform.settings import Settings
from tests.support.pg_admin import admin

pytestmark = pytest.mark.integration

EMAIL, PASSWORD = "user@example.com", "correct horse"
INVALID_TOKEN = 'Bearer realm="api", error="invalid_token"'


@pytest.fixture
async def api(empty_db: str) -> AsyncIterator[Any]:
    @asynccontextmanager
    async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
        yield []

    settings = Settings.from_env(
        {"DATABASE_URL": empty_db, "SECRET_KEY": "k" * 40, "REFRESH_REUSE_GRACE_S": "0.1"}
    )
    app = create_app(settings, open_sources=no_sources, passwords=Passwords.cheap())
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def post(client: Any, path: str, body: Any) -> tuple[int, Any, Any]:
    response = await client.post(path, json=body)
    return response.status_code, await response.get_json(), response


async def logged_in(client: Any) -> dict[str, str]:
    assert (await post(client, "/api/register/", {"email": EMAIL, "password": PASSWORD}))[0] == 201
    status, tokens, _ = await post(client, "/api/login/", {"email": EMAIL, "password": PASSWORD})
    assert status == 200
    return dict(tokens)


async def test_the_whole_flow(api: Any) -> None:
    status, body, _ = await post(api, "/api/register/", {"password": PASSWORD, "email": EMAIL})
    assert status == 201
    assert set(body) == {"id", "email"}
    assert body["email"] == EMAIL
    status, tokens, _ = await post(api, "/api/login/", {"email": EMAIL, "password": PASSWORD})
    assert status == 200
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 30)  # RFC 6749 5.1
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = await api.get("/api/me/", headers=auth)
    assert await me.get_json() == {
        "id": body["id"],
        "username": "",
        "email": EMAIL,
        "tasks_created": 0,
    }
    changed = await api.put("/api/me/", json={"username": "John Smith"}, headers=auth)
    assert (await changed.get_json())["username"] == "John Smith"
    status, fresh, _ = await post(api, "/api/refresh/", {"refresh_token": tokens["refresh_token"]})
    assert status == 200
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert (fresh["token_type"], fresh["expires_in"]) == ("Bearer", 30)
    status, out, _ = await post(api, "/api/logout/", {"refresh_token": fresh["refresh_token"]})
    assert (status, out) == (200, {"success": "User logged out."})
    status, _, response = await post(
        api, "/api/refresh/", {"refresh_token": fresh["refresh_token"]}
    )
    assert status == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN  # as for a bad access token


async def test_paths_work_without_their_trailing_slash(api: Any) -> None:
    assert (await post(api, "/api/register", {"email": EMAIL, "password": PASSWORD}))[0] == 201
    status, tokens, _ = await post(api, "/api/login", {"email": EMAIL, "password": PASSWORD})
    assert status == 200
    me = await api.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200


async def test_a_reused_refresh_token_is_401_and_revokes_its_family(api: Any) -> None:
    tokens = await logged_in(api)
    _, fresh, _ = await post(api, "/api/refresh/", {"refresh_token": tokens["refresh_token"]})
    await trio.sleep(0.2)  # past the grace window (0.1 s in this app)
    status, body, response = await post(
        api, "/api/refresh/", {"refresh_token": tokens["refresh_token"]}
    )
    assert status == 401
    assert body["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await post(api, "/api/refresh/", {"refresh_token": fresh["refresh_token"]}))[0] == 401


async def bad_refresh_token(api: Any, dsn: str, case: str, path: str) -> str:
    """A refresh token that ``path`` must refuse, of the kind ``case`` names."""
    if case == "malformed":
        return "not a refresh token"
    if case == "unknown":
        return str(uuid.uuid4())
    token = (await logged_in(api))["refresh_token"]
    if case == "expired":
        async with admin(dsn) as conn:
            await conn.execute(
                "UPDATE auth_refresh_tokens SET expires_at = now() - interval '1 second'"
                f" WHERE token_hash = '{hash_refresh_token(token)}'"
            )
    elif case == "logged out":
        assert (await post(api, "/api/logout/", {"refresh_token": token}))[0] == 200
    elif case == "reused":  # spent, and presented again past the grace window (0.1 s here)
        assert (await post(api, "/api/refresh/", {"refresh_token": token}))[0] == 200
        await trio.sleep(0.2)
        if path == "/api/logout/":
            # A log-out with a spent token is honoured (it ends its log-in): here the reuse
            # was caught on a refresh first, and the token comes back to log out.
            assert (await post(api, "/api/refresh/", {"refresh_token": token}))[0] == 401
    elif case == "orphaned":
        async with admin(dsn) as conn:
            await conn.execute("DELETE FROM accounts_users")
    return token


@pytest.mark.parametrize("path", ["/api/refresh/", "/api/logout/"])
@pytest.mark.parametrize(
    "case", ["malformed", "unknown", "expired", "logged out", "reused", "orphaned"]
)
async def test_a_bad_refresh_token_is_401_with_the_invalid_token_challenge(
    api: Any, empty_db: str, path: str, case: str
) -> None:
    """401 (the API's contract, rather than RFC 6749 5.2's 400 invalid_grant) with the
    challenge of a bad access token, ``error="invalid_token"`` (RFC 6750 3.1), whatever is
    wrong with the token."""
    token = await bad_refresh_token(api, empty_db, case, path)
    status, body, response = await post(api, path, {"refresh_token": token})
    assert status == 401
    assert body["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN


async def test_two_concurrent_refreshes_exactly_one_succeeds(api: Any) -> None:
    tokens = await logged_in(api)
    statuses: list[int] = []

    async def refresh() -> None:
        body = {"refresh_token": tokens["refresh_token"]}
        statuses.append((await post(api, "/api/refresh/", body))[0])

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(refresh)
    assert sorted(statuses) == [200, 401, 401, 401]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": EMAIL, "password": "short"}, "password"),
        ({"email": EMAIL, "password": "é" * 1025}, "8 to 1,024 characters"),
        ({"email": EMAIL}, "missing fields: password"),
        ({"email": EMAIL, "password": PASSWORD, "admin": "y"}, "unknown fields: admin"),
        ({"email": EMAIL, "password": 12345678}, "must be strings: password"),
        (["not", "an", "object"], "JSON object"),
    ],
)
async def test_a_bad_body_is_400_with_a_detail(api: Any, body: Any, fragment: str) -> None:
    status, answer, _ = await post(api, "/api/register/", body)
    assert status == 400
    assert answer["error"] == "invalid"
    assert fragment in answer["detail"]


async def test_wrong_credentials_are_401_whether_or_not_the_email_exists(api: Any) -> None:
    await logged_in(api)
    wrong = await post(api, "/api/login/", {"email": EMAIL, "password": "wrong password"})
    unknown = await post(api, "/api/login/", {"email": "no@example.com", "password": "whatever1"})
    assert wrong[0] == unknown[0] == 401
    assert (
        wrong[1] == unknown[1] == {"error": "bad_credentials", "detail": "wrong email or password"}
    )


async def test_login_attempts_are_limited_with_429(api: Any) -> None:
    await logged_in(api)
    for _ in range(5):
        assert (await post(api, "/api/login/", {"email": EMAIL, "password": "nope-nope"}))[0] == 401
    status, body, response = await post(api, "/api/login/", {"email": EMAIL, "password": PASSWORD})
    assert status == 429
    assert body["error"] == "too_many_attempts"
    assert response.headers["Retry-After"] == "300"


@pytest.mark.parametrize(
    ("header", "challenge"),
    [
        (None, 'Bearer realm="api"'),  # RFC 6750 3.1: no token, no error code
        ("Bearer", 'Bearer realm="api"'),
        ("Basic dXNlcjpwYXNz", 'Bearer realm="api"'),
        ("Bearer not.a.jwt", 'Bearer realm="api", error="invalid_token"'),
        ("Bearer {expired}", 'Bearer realm="api", error="invalid_token"'),
        ("Bearer {just_expired}", 'Bearer realm="api", error="invalid_token"'),
    ],
)
async def test_a_missing_bad_or_expired_access_token_is_401_with_www_authenticate(
    api: Any, header: str | None, challenge: str
) -> None:
    tokens = await logged_in(api)
    me = await api.get("/api/me/", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    user_id = (await me.get_json())["id"]
    expired = AccessTokens("k" * 40, clock=lambda: 1_000_000.0).issue(user_id, 30)
    # Issued 31 s ago with the 30 s lifetime: expired 1 s ago (no leeway by default).
    just_expired = AccessTokens("k" * 40, clock=lambda: time.time() - 31).issue(user_id, 30)
    headers = (
        {}
        if header is None
        else {"Authorization": header.format(expired=expired, just_expired=just_expired)}
    )
    response = await api.get("/api/me/", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert (await response.get_json())["error"] == "unauthorized"


async def test_an_access_token_lives_exactly_its_lifetime(api: Any) -> None:
    """Issued 28 s ago with a 30 s lifetime: accepted; 31 s ago: refused (no leeway)."""
    tokens = await logged_in(api)
    me = await api.get("/api/me/", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    user_id = (await me.get_json())["id"]
    for age_s, status in ((28, 200), (31, 401)):
        token = AccessTokens("k" * 40, clock=lambda: time.time() - age_s).issue(user_id, 30)  # noqa: B023
        answer = await api.get("/api/me/", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == status, age_s


async def test_email_taken_is_409_case_insensitively(api: Any) -> None:
    await logged_in(api)
    status, body, _ = await post(
        api, "/api/register/", {"email": EMAIL.upper(), "password": PASSWORD}
    )
    assert (status, body["error"]) == (409, "email_taken")


async def test_not_json_is_415_and_too_large_is_413(api: Any) -> None:
    response = await api.post("/api/login/", data="email=a", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert (await response.get_json())["error"] == "unsupported_media_type"
    huge = await api.post(
        "/api/register/",
        data=b'{"email": "' + b"a" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    body = await huge.get_json()
    assert body["error"] == "request_entity_too_large"
    assert "detail" in body


async def test_put_me_changes_only_the_callers_own_profile(api: Any) -> None:
    tokens = await logged_in(api)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    empty = await api.put("/api/me/", json={}, headers=auth)
    assert empty.status_code == 400
    rights = await api.put("/api/me/", json={"is_admin": "true"}, headers=auth)
    assert rights.status_code == 400  # not a field of the API
    moved = await api.put("/api/me/", json={"email": "new@example.com"}, headers=auth)
    assert (await moved.get_json())["email"] == "new@example.com"
