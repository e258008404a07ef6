"""A property of every JSON route: whatever the body (any JSON value, any bytes), the answer
is never a 5xx. Hypothesis throws arbitrary JSON values (text with NUL, control characters
and lone surrogates included; NaN and infinities), arbitrary bytes and deep nesting at each
route under ``/api/`` of the app's URL map (a new route is covered without editing this
file), with and without a valid bearer token, through quart-trio's test client on a real
PostgreSQL.

The app runs in a trio loop of its own thread for the whole module: Hypothesis calls the
test once per example, and one app serves them all (one database, no restart per example).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.accounts_app import PASSWORD, accounts_app

pytestmark = pytest.mark.integration

T = TypeVar("T")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Known to take a JSON body: the enumeration must find at least these.
KNOWN = {
    ("POST", "/api/register/"),
    ("POST", "/api/login/"),
    ("POST", "/api/refresh/"),
    ("POST", "/api/logout/"),
    ("PUT", "/api/me/"),
    ("POST", "/api/tasks/"),
}


@dataclass
class AppThread:
    """The app (started as in the other tests) in a trio loop of its own thread; ``call``
    runs an async function there and returns its result."""

    app: Any
    client: Any = None
    _token: trio.lowlevel.TrioToken | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: trio.Event | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> AppThread:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        assert self._ready.wait(60), "the app did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        assert self._thread is not None
        self._thread.join(60)

    async def _main(self) -> None:
        self._stop = trio.Event()
        async with self.app.test_app() as test_app:
            self.client = test_app.test_client()
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return trio.from_thread.run(fn, *args, trio_token=self._token)


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # e.g. /api/tasks/<int:task_id>/


@pytest.fixture(scope="module")
def running(empty_db_for_module: str) -> Iterator[AppThread]:
    with AppThread(
        accounts_app(empty_db_for_module, REGISTER_RATE_LIMIT="100000/minute")
    ) as running:
        yield running


def json_routes(app: Any) -> list[Route]:
    """Every method of every rule under ``/api/`` (HEAD and OPTIONS aside)."""
    return sorted(
        {
            Route(method, rule.rule)
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/")
            for method in rule.methods or ()
            if method in METHODS
        },
        key=lambda route: (route.rule, route.method),
    )


def field_names(openapi: dict[str, Any]) -> list[str]:
    """Every property name of the OpenAPI document's schemas: bodies that get past
    "unknown fields" to the checks of each field."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(openapi)
    return sorted(names)


@pytest.fixture(scope="module")
def routes(running: AppThread) -> list[Route]:
    found = json_routes(running.app)
    assert {(r.method, r.rule) for r in found} >= KNOWN
    return found


@pytest.fixture(scope="module")
def fields(running: AppThread) -> list[str]:
    async def openapi() -> Any:
        return await (await running.client.get("/openapi.json")).get_json()

    names = field_names(running.call(openapi))
    assert {"email", "password", "username", "refresh_token", "image", "meta"} <= set(names)
    return names


_emails = itertools.count()


async def fresh_user(client: Any) -> tuple[int, str, str]:
    """A new user, logged in: id, access token, refresh token."""
    email = f"prop{next(_emails)}@example.com"
    body = {"email": email, "password": PASSWORD}
    registered = await client.post("/api/register/", json=body)
    assert registered.status_code == 201
    tokens = await (await client.post("/api/login/", json=body)).get_json()
    return (await registered.get_json())["id"], tokens["access_token"], tokens["refresh_token"]


#: Text with everything that broke the service once: NUL, control characters, lone
#: surrogates, the letters whose lower case differs between Python and PostgreSQL.
SPECIAL = [
    "",
    " ",
    "\x00",
    "\x01",
    "\ud800",
    "\udfff",
    "\x7f",
    "\u0085",
    "\ufffd",
    "x\u039f\u0394\u039f\u03a3@example.com",  # xΟΔΟΣ (Greek capitals)  # noqa: RUF003
    "xİ@example.com",
    "user@example.com",
    " user@example.com ",
    "us\x00er@example.com",
    "u\ud800@example.com",
    PASSWORD,
    "a" * 1100,
]
texts = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(st.characters(exclude_categories=()), max_size=40),  # surrogates included
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)


def json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=12,
    )


@st.composite
def bodies(draw: st.DrawFn, fields: list[str], refresh_token: str) -> bytes:
    """JSON text of any value (with a known field's name or a valid refresh token now and
    then), invalid UTF-8 and lone surrogates in it, deep nesting, or any bytes at all."""
    keys = st.one_of(st.sampled_from(fields), texts)
    kind = draw(st.sampled_from(["object", "value", "bytes", "nested", "surrogate-bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "nested":
        depth = draw(st.integers(1, 30_000))
        return b"[" * depth + b"]" * depth
    value: Any
    if kind == "object":
        value = draw(
            st.dictionaries(
                keys,
                st.one_of(json_values(keys), st.just(refresh_token)),
                max_size=4,
            )
        )
    else:
        value = draw(json_values(keys))
    text = json.dumps(value, ensure_ascii=kind != "surrogate-bytes")  # NaN, Infinity too
    return text.encode("utf-8", "surrogatepass")


@st.composite
def requests(
    draw: st.DrawFn, routes: list[Route], fields: list[str], refresh_token: str, user_id: int
) -> tuple[Route, str, bytes, str | None, bool]:
    route = draw(st.sampled_from(routes))
    ids = st.one_of(st.sampled_from([0, 1, user_id, 2**63 - 1, 2**63]), st.integers(0, 10**6))
    path = re.sub(r"<[^>]+>", lambda _: str(draw(ids)), route.rule)
    content_type = draw(
        st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None])
    )
    return route, path, draw(bodies(fields, refresh_token)), content_type, draw(st.booleans())


def test_no_body_makes_any_json_route_answer_5xx(
    running: AppThread, routes: list[Route], fields: list[str]
) -> None:
    user_id, _, refresh_token = running.call(fresh_user, running.client)
    seen: list[int] = []

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(routes, fields, refresh_token, user_id))
    def example(request: tuple[Route, str, bytes, str | None, bool]) -> None:
        route, path, body, content_type, with_token = request

        async def send() -> int:
            headers = {"Content-Type": content_type} if content_type else {}
            if with_token:
                # A fresh user each time: an example may delete its user or change its email.
                headers["Authorization"] = f"Bearer {(await fresh_user(running.client))[1]}"
            response = await running.client.open(
                path, method=route.method, data=body, headers=headers
            )
            return int(response.status_code)

        status = running.call(send)
        seen.append(status)
        assert status < 500, f"{route.method} {path} answered {status} to {body[:200]!r}"

    example()
    # The examples reached past the 400s: some were accepted, some refused as unauthorized.
    assert any(status < 300 for status in seen), sorted(set(seen))
    assert 401 in seen
