"""The Stack Exchange client against the fake API over real HTTP: paging, has_more, gzip,
quota, backoff, error bodies, throttling, timeouts, and what the fake itself checks."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from service.platform.response_cache import open_redis
from service.search.backoff import BACKOFF_KEY, LocalBackoffs, RedisBackoffs
from service.search.client import (
    THROTTLE_BACKOFF_S,
    ApiBackoffError,
    ApiErrorResponse,
    ApiThrottledError,
    ApiTimeoutError,
    ApiUnavailableError,
    StackExchangeClient,
)
from service.search.fake_api import FakeApiState, fake_questions
from service.search.models import Question
from tests.support.search_fixtures import running_fake_api

TEXT = "trio nursery"


class Clock:
    """A clock the test moves by hand (for the backoff's bookkeeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeApiState]]:
    async with running_fake_api() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client_of(http: httpx.AsyncClient, url: str, **options: object) -> StackExchangeClient:
    return StackExchangeClient(http, url, timeout_s=5.0, **options)  # type: ignore[arg-type]


async def test_pages_follow_each_other_until_has_more_is_false(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, _ = fake
    client = client_of(http, url)
    expected = fake_questions("stackoverflow", TEXT)
    ids: list[int] = []
    page_number = 0
    has_more = True
    while has_more:
        page_number += 1
        page = await client.search(TEXT, "stackoverflow", page_number, 100)
        ids.extend(q.question_id for q in page.questions)
        has_more = page.has_more
    assert page_number == -(-len(expected) // 100)
    assert sorted(ids) == sorted(item["question_id"] for item in expected)
    assert len(set(ids)) == len(ids)


async def test_every_field_of_a_question_is_read_and_html_entities_are_undone(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, _ = fake
    page = await client_of(http, url, sort="votes").search(TEXT, "stackoverflow", 1, 100)
    by_id = {item["question_id"]: item for item in fake_questions("stackoverflow", TEXT)}
    for question in page.questions:
        item = by_id[question.question_id]
        assert question.link == item["link"]
        assert question.score == item["score"]
        assert question.answer_count == item["answer_count"]
        assert question.view_count == item["view_count"]
        assert question.is_answered == item["is_answered"]
        assert list(question.tags) == item["tags"]
        assert int(question.creation_date.timestamp()) == item["creation_date"]
        assert int(question.last_activity_date.timestamp()) == item["last_activity_date"]
        assert "&quot;" not in question.title
        assert "&#39;" not in question.owner
    assert any('"strict"' in q.title for q in page.questions)
    assert [q.score for q in page.questions] == sorted(
        (q.score for q in page.questions), reverse=True
    )


@pytest.mark.parametrize("with_header", [True, False])
async def test_gzip_bodies_are_read_with_or_without_their_header(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient, with_header: bool
) -> None:
    url, state = fake
    state.gzip_header = with_header
    raw = await http.get(f"{url}/2.3/search", params={"site": "so", "intitle": "x"})
    assert (raw.content[:2] == b"\x1f\x8b") is not with_header  # httpx undid it, or not
    page = await client_of(http, url).search(TEXT, "stackoverflow", 1, 10)
    assert len(page.questions) == 10


async def test_quota_remaining_is_reported(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, state = fake
    client = client_of(http, url)
    first = await client.search(TEXT, "stackoverflow", 1, 10)
    second = await client.search(TEXT, "stackoverflow", 2, 10)
    assert first.quota_remaining == state.quota_max - 1
    assert second.quota_remaining == state.quota_max - 2 == client.quota_remaining


async def test_the_query_string_carries_every_parameter_and_the_key() -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=gzip.compress(b'{"items": [], "has_more": false}'))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = StackExchangeClient(
            http, "https://api.example/", timeout_s=1, sort="votes", order="asc", key="k3y"
        )
        page = await client.search("a b", "superuser", 3, 50)
    assert page.questions == ()
    assert page.has_more is False
    assert seen[0].path == "/2.3/search"
    assert dict(seen[0].params) == {
        "intitle": "a b",
        "site": "superuser",
        "page": "3",
        "pagesize": "50",
        "sort": "votes",
        "order": "asc",
        "key": "k3y",
    }


async def test_a_backoff_holds_back_the_next_call_of_the_method(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, state = fake
    clock = Clock()
    client = client_of(http, url, clock=clock, max_backoff_wait_s=1.0)
    state.backoff_s = 10
    page = await client.search(TEXT, "stackoverflow", 1, 10)
    assert page.backoff_s == 10
    state.backoff_s = None
    calls = state.calls
    clock.now += 5  # 5 s of the 10 left: more than the client may wait
    with pytest.raises(ApiBackoffError) as refused:
        await client.search(TEXT, "stackoverflow", 2, 10)
    assert state.calls == calls  # the API was not called
    assert "backoff" in str(refused.value)
    assert "5 s" in str(refused.value)
    clock.now += 5  # passed
    await client.search(TEXT, "stackoverflow", 2, 10)
    assert state.calls == calls + 1


async def test_a_short_backoff_is_waited_out(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, state = fake
    client = client_of(http, url, max_backoff_wait_s=5.0)
    state.backoff_s = 1
    await client.search(TEXT, "stackoverflow", 1, 10)
    state.backoff_s = None
    started = trio.current_time()
    await client.search(TEXT, "stackoverflow", 2, 10)
    assert trio.current_time() - started >= 0.95


@pytest.mark.parametrize(
    ("status", "error_id", "name"),
    [
        (400, 400, "bad_parameter"),
        (401, 401, "access_token_required"),
        (403, 403, "access_denied"),
        (404, 404, "no_method"),
        (500, 500, "internal_error"),
        (503, 503, "temporarily_unavailable"),
    ],
)
async def test_an_error_body_becomes_an_error_naming_it(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient, status: int, error_id: int, name: str
) -> None:
    url, state = fake
    state.error = [status, error_id, name, f"the {name} message"]
    with pytest.raises(ApiErrorResponse) as failed:
        await client_of(http, url).search(TEXT, "stackoverflow", 1, 10)
    error = failed.value
    assert (error.status, error.error_id, error.error_name) == (status, error_id, name)
    assert name in str(error)
    assert f"the {name} message" in str(error)


@pytest.mark.parametrize("how", ["429", "502"])
async def test_throttling_is_its_own_error(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient, how: str
) -> None:
    url, state = fake
    state.throttle = how
    with pytest.raises(ApiThrottledError) as throttled:
        await client_of(http, url).search(TEXT, "stackoverflow", 1, 10)
    assert "throttling" in str(throttled.value)
    if how == "429":
        assert throttled.value.retry_after_s == 30


async def test_a_slow_api_is_a_timeout_error(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, state = fake
    state.delay_s = 3.0
    client = StackExchangeClient(http, url, timeout_s=0.3)
    started = trio.current_time()
    with pytest.raises(ApiTimeoutError, match=r"did not answer within 0\.3 s"):
        await client.search(TEXT, "stackoverflow", 1, 10)
    assert trio.current_time() - started < 2.0


async def test_an_unreachable_api_is_an_unavailable_error(http: httpx.AsyncClient) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now
    with pytest.raises(ApiUnavailableError, match="could not be reached"):
        await StackExchangeClient(http, f"http://127.0.0.1:{port}", timeout_s=2).search(
            TEXT, "stackoverflow", 1, 10
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "without JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"items": [{"title": "no id"}]}', "without its fields"),
        (b"\x1f\x8b broken", "broken gzip"),
    ],
)
async def test_a_body_that_is_not_the_apis_json_is_an_unavailable_error(
    body: bytes, message: str
) -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=body))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ApiUnavailableError, match=message):
            await StackExchangeClient(http, "https://api.example", timeout_s=1).search(
                "x", "so", 1, 10
            )


async def test_the_fake_refuses_what_the_real_api_refuses(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient
) -> None:
    url, _ = fake
    client = client_of(http, url)
    with pytest.raises(ApiErrorResponse, match="site is required"):
        await client.search(TEXT, "", 1, 10)
    with pytest.raises(ApiErrorResponse, match="pagesize"):
        await client.search(TEXT, "stackoverflow", 1, 101)


@pytest.mark.parametrize("how", ["429", "502"])
async def test_throttling_holds_back_the_next_call_as_a_backoff(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient, how: str
) -> None:
    url, state = fake
    clock = Clock()
    client = client_of(http, url, clock=clock, max_backoff_wait_s=1.0)
    state.throttle = how
    with pytest.raises(ApiThrottledError):
        await client.search(TEXT, "stackoverflow", 1, 10)
    state.throttle = None
    calls = state.calls
    with pytest.raises(ApiBackoffError):
        await client.search(TEXT, "stackoverflow", 1, 10)
    assert state.calls == calls  # not called while throttled
    clock.now += THROTTLE_BACKOFF_S  # 429 says Retry-After: 30, the 502 body says nothing
    await client.search(TEXT, "stackoverflow", 1, 10)
    assert state.calls == calls + 1


@pytest.mark.integration
async def test_a_backoff_is_shared_by_a_page_client_and_the_refresher_through_redis(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient, redis_url: str
) -> None:
    url, state = fake
    async with open_redis(redis_url) as redis:
        await redis.delete([BACKOFF_KEY.format(method="search")])
        # Two processes' clients: each its own process-local state, one Redis.
        page = client_of(http, url, max_backoff_wait_s=1.0, backoffs=RedisBackoffs(redis))
        refresher = client_of(http, url, max_backoff_wait_s=1.0, backoffs=RedisBackoffs(redis))
        state.backoff_s = 10
        await page.search(TEXT, "stackoverflow", 1, 10)
        state.backoff_s = None
        calls = state.calls
        with pytest.raises(ApiBackoffError):
            await refresher.search(TEXT, "stackoverflow", 1, 10)
        assert state.calls == calls
        assert 9_000 < await redis.pttl(BACKOFF_KEY.format(method="search")) <= 10_000
        await redis.delete([BACKOFF_KEY.format(method="search")])
        await refresher.search(TEXT, "stackoverflow", 1, 10)  # the backoff gone: called
        assert state.calls == calls + 1


async def test_with_redis_down_the_process_local_backoff_holds(
    fake: tuple[str, FakeApiState], http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    url, state = fake
    with trio.socket.socket() as unused:  # a port nobody listens on
        await unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with open_redis(f"redis://127.0.0.1:{port}") as redis:
        shared = RedisBackoffs(redis, LocalBackoffs(trio.current_time))
        page = client_of(http, url, max_backoff_wait_s=1.0, backoffs=shared)
        refresher = client_of(http, url, max_backoff_wait_s=1.0, backoffs=shared)
        state.backoff_s = 10
        await page.search(TEXT, "stackoverflow", 1, 10)
        state.backoff_s = None
        calls = state.calls
        with pytest.raises(ApiBackoffError):
            await refresher.search(TEXT, "stackoverflow", 1, 10)
        assert state.calls == calls
    assert "backoffs: Redis failed" in caplog.text


@pytest.mark.parametrize(
    ("link", "kept"),
    [
        ("https://stackoverflow.com/questions/1/x", True),
        ("http://superuser.com/questions/2/y", True),
        ("javascript:alert(document.cookie)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/x", False),
        ("https:///no-host", False),
    ],
)
def test_only_http_and_https_links_are_kept(link: str, kept: bool) -> None:
    item = {"question_id": 1, "title": "t", "link": link, "creation_date": 0}
    question = Question.from_api("stackoverflow", item)
    assert question.link == (link.strip() if kept else "")
