"""The HTTP JSON source's rules, on httpx's MockTransport.

Every body is *streamed* to the source in pieces (:class:`Chunks`), as the network
delivers it: a body given to ``httpx.Response`` as ``content=`` or ``json=`` is read
into memory before the source sees it, a path the real network never takes.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing

from service.fanout.gather import gather
from service.fanout.http_source import BodyTooLargeError, HttpStatusError
from service.fanout.outcome import Outcome
from service.fanout.rows import InvalidRowsError
from tests.support.http_answers import (
    BODY,
    ENCODINGS,
    ROWS,
    URL,
    Chunks,
    answer,
    compressed,
    corrupt,
    json_answer,
    raw_deflate,
    source_with,
)


async def test_json_array_is_returned_as_rows() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_answer(ROWS)

    assert await source_with(handler).fetch() == ROWS
    assert seen[0].method == "GET"
    assert str(seen[0].url) == URL


@pytest.mark.parametrize("pieces", [1, 2, len(BODY)])
async def test_body_in_any_number_of_pieces_is_joined(pieces: int) -> None:
    source = source_with(lambda _: answer(BODY, pieces=pieces))
    assert await source.fetch() == ROWS


@pytest.mark.parametrize("status", [204, 299])
async def test_any_2xx_status_is_accepted(status: int) -> None:
    source = source_with(lambda _: answer(b"[]", status))
    assert await source.fetch() == []


@pytest.mark.parametrize("status", [301, 404, 500, 503])
async def test_non_2xx_status_is_an_error(status: int) -> None:
    source = source_with(lambda _: json_answer(ROWS, status))
    with pytest.raises(HttpStatusError, match=str(status)):
        await source.fetch()


SECRET_URL = "http://svc:s3cretPW@source.test/data.json?api_key=k3y-123&page=2"
SECRETS = ("svc", "s3cretPW", "k3y-123")


@pytest.mark.parametrize("status", [302, 500])
async def test_status_error_keeps_the_url_credentials_out_of_the_message(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_with(lambda _: json_answer({"error": "boom"}, status), url=SECRET_URL)
    for read in (source.fetch, source.check):
        with pytest.raises(HttpStatusError) as raised:
            await read()
        assert str(raised.value) == (
            f"HTTP {status} from http://source.test/data.json?api_key=***&page=***"
        )
    result = await gather([source], timeout_s=2.0)
    assert result.reports[0].error is not None
    assert "source.test" in result.reports[0].error
    assert "source.test" in caplog.text
    for secret in SECRETS:
        assert secret not in result.reports[0].error
        assert secret not in caplog.text


def test_repr_of_a_source_keeps_the_url_credentials_out() -> None:
    text = repr(source_with(lambda _: json_answer(ROWS), url=SECRET_URL))
    assert "source.test" in text
    for secret in SECRETS:
        assert secret not in text


async def test_body_that_is_not_json_is_invalid() -> None:
    source = source_with(lambda _: answer(b"<html>oops</html>"))
    with pytest.raises(InvalidRowsError, match="not JSON"):
        await source.fetch()


@pytest.mark.parametrize("document", [{"id": 1, "name": "x"}, "text", 42, None])
async def test_json_that_is_not_an_array_is_invalid(document: Any) -> None:
    source = source_with(lambda _: json_answer(document))
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
    bad = source_with(lambda _: json_answer(items))
    result = await gather([bad], timeout_s=2.0)
    assert result.rows == []
    assert result.reports[0].outcome is Outcome.INVALID


async def test_declared_body_over_the_limit_is_refused_unread() -> None:
    body = Chunks([b"[" * 5000])
    source = source_with(
        lambda _: httpx.Response(200, headers={"Content-Length": "5000"}, stream=body),
        max_body_bytes=1000,
    )
    with pytest.raises(BodyTooLargeError, match="Content-Length 5000"):
        await source.fetch()
    assert body.sent == 0
    assert body.closed


async def test_content_length_at_the_limit_is_read() -> None:
    headers = {"Content-Length": str(len(BODY))}
    source = source_with(lambda _: answer(BODY, headers=headers), max_body_bytes=len(BODY))
    assert await source.fetch() == ROWS


async def test_content_length_one_past_the_limit_is_refused() -> None:
    headers = {"Content-Length": str(len(BODY))}
    source = source_with(lambda _: answer(BODY, headers=headers), max_body_bytes=len(BODY) - 1)
    with pytest.raises(BodyTooLargeError, match=f"Content-Length {len(BODY)} is over"):
        await source.fetch()


async def test_endless_streamed_body_is_cut_at_the_limit() -> None:
    def endless() -> Iterable[bytes]:
        while True:
            yield b" " * 100

    body = Chunks(endless())
    source = source_with(lambda _: httpx.Response(200, stream=body), max_body_bytes=1000)
    with pytest.raises(BodyTooLargeError):
        await source.fetch()
    assert body.sent <= 1100  # it stopped reading right after the limit
    assert body.closed


@pytest.mark.parametrize("pieces", [1, 3, len(BODY)])
async def test_body_exactly_at_the_limit_is_accepted(pieces: int) -> None:
    source = source_with(lambda _: answer(BODY, pieces=pieces), max_body_bytes=len(BODY))
    assert await source.fetch() == ROWS


@pytest.mark.parametrize("pieces", [1, 3, len(BODY)])
async def test_body_one_byte_over_the_limit_is_refused(pieces: int) -> None:
    source = source_with(lambda _: answer(BODY, pieces=pieces), max_body_bytes=len(BODY) - 1)
    with pytest.raises(BodyTooLargeError, match=f"limit of {len(BODY) - 1} bytes"):
        await source.fetch()


async def test_redirect_is_not_followed_by_default() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/moved":
            return json_answer(ROWS)
        return answer(b"", 302, headers={"Location": "/moved"})

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

    # An async iterator as content is streamed too (it cannot be read in advance).
    source = source_with(lambda _: httpx.Response(200, content=trickle()), max_body_bytes=10**6)
    started = trio.current_time()
    result = await gather([source], timeout_s=2.0)
    assert trio.current_time() - started == pytest.approx(2.0)
    assert result.reports[0].outcome is Outcome.TIMEOUT


async def test_check_passes_on_2xx_and_fails_otherwise() -> None:
    await source_with(lambda _: json_answer(ROWS)).check()
    with pytest.raises(HttpStatusError):
        await source_with(lambda _: answer(b"", 503)).check()


@pytest.mark.parametrize("pieces", [1, 3, 1000])
@pytest.mark.parametrize("fmt", list(ENCODINGS))
async def test_compressed_body_is_decoded(fmt: str, pieces: int) -> None:
    source = source_with(lambda _: compressed(BODY, fmt, pieces=pieces), max_body_bytes=1000)
    assert await source.fetch() == ROWS


@pytest.mark.parametrize("pieces", [1, 3, 1000])
@pytest.mark.parametrize("fmt", list(ENCODINGS))
async def test_compressed_body_decoding_to_exactly_the_limit_is_accepted(
    fmt: str, pieces: int
) -> None:
    source = source_with(lambda _: compressed(BODY, fmt, pieces=pieces), max_body_bytes=len(BODY))
    assert await source.fetch() == ROWS


@pytest.mark.parametrize("pieces", [1, 3, 1000])
@pytest.mark.parametrize("fmt", list(ENCODINGS))
async def test_compressed_body_decoding_one_byte_past_the_limit_is_refused(
    fmt: str, pieces: int
) -> None:
    limit = len(BODY) - 1
    source = source_with(lambda _: compressed(BODY, fmt, pieces=pieces), max_body_bytes=limit)
    with pytest.raises(BodyTooLargeError, match=f"limit of {limit} bytes"):
        await source.fetch()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        pytest.param("gzip", corrupt(gzip.compress(BODY), -8), id="gzip-bad-checksum"),
        pytest.param("gzip", gzip.compress(BODY)[:10] + b"\xff" * 20, id="gzip-garbage"),
        pytest.param("gzip", gzip.compress(BODY)[:-8], id="gzip-truncated"),
        pytest.param("gzip", gzip.compress(BODY) + b"junk", id="gzip-trailing-junk"),
        pytest.param("gzip", b"\x1f", id="gzip-one-byte"),
        pytest.param("deflate", corrupt(zlib.compress(BODY), -1), id="zlib-bad-checksum"),
        pytest.param("deflate", zlib.compress(BODY)[:-4], id="zlib-truncated"),
        pytest.param("deflate", b"\xff" * 20, id="raw-deflate-garbage"),
        pytest.param("deflate", raw_deflate(BODY)[:-3], id="raw-deflate-truncated"),
        pytest.param("deflate", raw_deflate(BODY) + b"junk", id="raw-deflate-trailing-junk"),
    ],
)
async def test_corrupt_compressed_body_is_invalid(encoding: str, body: bytes) -> None:
    """A body that does not decode is refused, even when what did decode is valid JSON."""
    source = source_with(lambda _: answer(body, headers={"Content-Encoding": encoding}))
    with pytest.raises(InvalidRowsError, match=f"not valid {encoding}"):
        await source.fetch()
    result = await gather([source], timeout_s=2.0)
    assert result.reports[0].outcome is Outcome.INVALID


@functools.cache
def bomb(fmt: str) -> bytes:
    """200 MB of zeros that compress to about 200 kB, in ``fmt`` (compressed once, then framed)."""
    data = b"0" * 200 * 1024 * 1024
    deflated = raw_deflate(data)
    if fmt == "raw-deflate":
        return deflated
    if fmt == "zlib":
        return b"\x78\x9c" + deflated + struct.pack(">I", zlib.adler32(data))
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return gzip_header + deflated + struct.pack("<II", zlib.crc32(data), len(data) % 2**32)


@pytest.mark.parametrize("fmt", ["gzip", "zlib", "raw-deflate"])
async def test_compression_bomb_is_cut_at_the_limit_without_inflating_it(fmt: str) -> None:
    import tracemalloc

    body, encoding = bomb(fmt), ENCODINGS[fmt][0]
    source = source_with(
        lambda _: answer(body, headers={"Content-Encoding": encoding}, pieces=len(body) // 4096),
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


def test_bomb_framing_is_what_the_standard_library_writes() -> None:
    """The hand-framed bombs are valid gzip and zlib streams (checked on a small one)."""
    data = b"0" * 1000
    deflated = raw_deflate(data)
    assert (
        gzip.decompress(
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
            + deflated
            + struct.pack("<II", zlib.crc32(data), len(data))
        )
        == data
    )
    assert zlib.decompress(b"\x78\x9c" + deflated + struct.pack(">I", zlib.adler32(data))) == data


async def test_unknown_content_encoding_is_refused() -> None:
    source = source_with(lambda _: answer(b"\x00", headers={"Content-Encoding": "br"}))
    with pytest.raises(HttpStatusError, match="Content-Encoding"):
        await source.fetch()
