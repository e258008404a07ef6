"""The HTTP JSON source's rules, on httpx's MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing

from service.fanout import gather
from service.http_source import BodyTooLargeError, HttpJsonSource, HttpStatusError
from service.outcome import Outcome
from service.rows import InvalidRowsError

URL = "http://source.test/data.json"
ROWS = [{"id": 2, "name": "Test 2"}, {"id": 1, "name": "Test 1"}]


def source_with(
    handler: Callable[[httpx.Request], Any], *, max_body_bytes: int = 1024, follow: bool = False
) -> HttpJsonSource:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpJsonSource(
        "remote", URL, client, max_body_bytes=max_body_bytes, follow_redirects=follow
    )


async def test_json_array_is_returned_as_rows() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ROWS)

    assert await source_with(handler).fetch() == ROWS
    assert seen[0].method == "GET"
    assert str(seen[0].url) == URL


@pytest.mark.parametrize("status", [204, 299])
async def test_any_2xx_status_is_accepted(status: int) -> None:
    source = source_with(lambda _: httpx.Response(status, content=b"[]"))
    assert await source.fetch() == []


@pytest.mark.parametrize("status", [301, 404, 500, 503])
async def test_non_2xx_status_is_an_error(status: int) -> None:
    source = source_with(lambda _: httpx.Response(status, json=ROWS))
    with pytest.raises(HttpStatusError, match=str(status)):
        await source.fetch()


async def test_body_that_is_not_json_is_invalid() -> None:
    source = source_with(lambda _: httpx.Response(200, content=b"<html>oops</html>"))
    with pytest.raises(InvalidRowsError, match="not JSON"):
        await source.fetch()


@pytest.mark.parametrize("document", [{"id": 1, "name": "x"}, "text", 42, None])
async def test_json_that_is_not_an_array_is_invalid(document: Any) -> None:
    source = source_with(lambda _: httpx.Response(200, content=orjson.dumps(document)))
    with pytest.raises(InvalidRowsError, match="not an array"):
        await source.fetch()


@pytest.mark.parametrize(
    "items",
    [
        [{"id": 1, "name": "ok"}, {"name": "no id"}],
        [{"id": 1.5, "name": "float id"}],
        [{"id": 1, "name": ["not", "a", "string"]}],
        [{"id": 1, "name": "ok"}, "not an object"],
        [[1, "a list"]],
    ],
)
async def test_one_bad_item_drops_the_whole_source(items: list[Any]) -> None:
    bad = source_with(lambda _: httpx.Response(200, content=orjson.dumps(items)))
    result = await gather([bad], timeout_s=2.0)
    assert result.rows == []
    assert result.reports[0].outcome is Outcome.INVALID


async def test_declared_body_over_the_limit_is_refused_unread() -> None:
    source = source_with(
        lambda _: httpx.Response(200, headers={"Content-Length": "5000"}, content=b"[" * 5000),
        max_body_bytes=1000,
    )
    with pytest.raises(BodyTooLargeError, match="Content-Length 5000"):
        await source.fetch()


async def test_endless_streamed_body_is_cut_at_the_limit() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 100
            yield b" " * 100

    source = source_with(lambda _: httpx.Response(200, content=endless()), max_body_bytes=1000)
    with pytest.raises(BodyTooLargeError):
        await source.fetch()
    assert sent <= 1100  # it stopped reading right after the limit


async def test_body_exactly_at_the_limit_is_accepted() -> None:
    body = orjson.dumps(ROWS)
    source = source_with(lambda _: httpx.Response(200, content=body), max_body_bytes=len(body))
    assert await source.fetch() == ROWS


async def test_redirect_is_not_followed_by_default() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/moved":
            return httpx.Response(200, json=ROWS)
        return httpx.Response(302, headers={"Location": "/moved"})

    with pytest.raises(HttpStatusError, match="302"):
        await source_with(handler).fetch()
    assert await source_with(handler, follow=True).fetch() == ROWS


async def test_transport_error_is_a_failed_source() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = await gather([source_with(handler)], timeout_s=2.0)
    assert result.reports[0].outcome is Outcome.ERROR
    assert result.reports[0].error_type == "ConnectError"


async def test_slow_body_is_cut_off_by_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b"["
        while True:
            await trio.sleep(0.1)
            yield b" "

    source = source_with(lambda _: httpx.Response(200, content=trickle()), max_body_bytes=10**6)
    started = trio.current_time()
    result = await gather([source], timeout_s=2.0)
    assert trio.current_time() - started == pytest.approx(2.0)
    assert result.reports[0].outcome is Outcome.TIMEOUT


async def test_check_passes_on_2xx_and_fails_otherwise() -> None:
    await source_with(lambda _: httpx.Response(200, json=ROWS)).check()
    with pytest.raises(HttpStatusError):
        await source_with(lambda _: httpx.Response(503)).check()


def gzip_stream(data_size: int, chunk: int = 4096) -> Callable[[], AsyncIterator[bytes]]:
    """A gzip body of ``data_size`` zero bytes, served ``chunk`` bytes at a time."""
    import gzip

    compressed = gzip.compress(b"0" * data_size)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(compressed), chunk):
            yield compressed[start : start + chunk]

    return stream


async def test_compressed_body_is_decoded() -> None:
    import gzip

    body = gzip.compress(orjson.dumps(ROWS))

    async def once() -> AsyncIterator[bytes]:
        yield body

    source = source_with(
        lambda _: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=once()),
        max_body_bytes=1000,
    )
    assert await source.fetch() == ROWS


async def test_compression_bomb_is_cut_at_the_limit_without_inflating_it() -> None:
    import tracemalloc

    bomb = gzip_stream(200 * 1024 * 1024)  # 200 MB that compress to about 200 kB
    source = source_with(
        lambda _: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb()),
        max_body_bytes=1024 * 1024,
    )
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLargeError):
            await source.fetch()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


async def test_unknown_content_encoding_is_refused() -> None:
    async def once() -> AsyncIterator[bytes]:
        yield b"\x00"

    source = source_with(
        lambda _: httpx.Response(200, headers={"Content-Encoding": "br"}, content=once())
    )
    with pytest.raises(HttpStatusError, match="Content-Encoding"):
        await source.fetch()
