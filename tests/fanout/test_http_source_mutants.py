"""HTTP source rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

import gzip
import random
import zlib
from typing import Any

import httpx
import pytest

from service.fanout.http_source import (
    HttpJsonSource,
    HttpStatusError,
    _CappedDecoder,
    _wbits,
    open_http_client,
)
from service.fanout.rows import InvalidRowsError
from tests.support.http_answers import (
    BODY,
    ROWS,
    URL,
    answer,
    corrupt,
    json_answer,
    raw_deflate,
    source_with,
)


async def test_the_client_has_no_timeouts_redirects_or_proxies_and_asks_for_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits: list[dict[str, Any]] = []
    real_limits = httpx.Limits

    def recording_limits(**kwargs: Any) -> httpx.Limits:
        limits.append(kwargs)
        return real_limits(**kwargs)

    monkeypatch.setattr(httpx, "Limits", recording_limits)
    async with open_http_client(max_connections=7) as client:
        assert client.timeout == httpx.Timeout(None)
        assert client.follow_redirects is False
        assert client.trust_env is False
        assert client.headers["Accept"] == "application/json"
        assert client.headers["Accept-Encoding"] == "gzip, deflate"
    assert limits == [{"max_connections": 7, "max_keepalive_connections": 7}]


async def test_a_source_does_not_follow_redirects_unless_asked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer(b"", 302, headers={"Location": "/moved"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    source = HttpJsonSource("remote", URL, client, max_body_bytes=1024)
    with pytest.raises(HttpStatusError, match=r"302"):
        await source.fetch()


def test_name_and_repr() -> None:
    source = source_with(lambda _: json_answer(ROWS))
    assert source.name == "remote"
    assert repr(source) == f"<HttpJsonSource 'remote' {URL}>"


async def test_json_that_is_not_an_array_names_its_type() -> None:
    with pytest.raises(InvalidRowsError, match=r"^JSON is a dict, not an array$"):
        await source_with(lambda _: json_answer({"id": 1})).fetch()


async def test_check_gets_the_url_and_follows_redirects_when_asked() -> None:
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        if request.url.path == "/moved":
            return json_answer(ROWS)
        return answer(b"", 302, headers={"Location": "/moved"})

    await source_with(handler, follow=True).check()
    assert methods == ["GET", "GET"]


async def test_status_300_is_an_error() -> None:
    with pytest.raises(HttpStatusError, match=r"HTTP 300"):
        await source_with(lambda _: json_answer(ROWS, 300)).fetch()


async def test_identity_content_encoding_is_plain() -> None:
    source = source_with(lambda _: answer(BODY, headers={"Content-Encoding": "identity"}))
    assert await source.fetch() == ROWS


async def test_an_unsupported_content_encoding_is_named() -> None:
    source = source_with(lambda _: answer(BODY, headers={"Content-Encoding": "br"}))
    with pytest.raises(HttpStatusError, match=r"^unsupported Content-Encoding 'br'$"):
        await source.fetch()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("gzip", b""), ("deflate", b""), ("deflate", raw_deflate(b"")), ("gzip", gzip.compress(b""))],
)
async def test_an_empty_or_two_byte_compressed_body_is_not_truncated(
    encoding: str, body: bytes
) -> None:
    # Decoded to nothing, it is refused as JSON, not as a broken compressed stream.
    source = source_with(lambda _: answer(body, headers={"Content-Encoding": encoding}))
    with pytest.raises(InvalidRowsError, match=r"^body is not JSON"):
        await source.fetch()


async def test_a_corrupt_stream_carries_zlibs_reason() -> None:
    body = corrupt(gzip.compress(BODY), 10)
    source = source_with(lambda _: answer(body, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(InvalidRowsError, match=r"^body is not valid gzip: Error -3 while"):
        await source.fetch()


async def test_data_after_the_compressed_stream_is_refused() -> None:
    body = gzip.compress(BODY) + b"junk"
    source = source_with(lambda _: answer(body, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(
        InvalidRowsError, match=r"^body is not valid gzip: data after the end of the compressed"
    ):
        await source.fetch()


async def test_a_truncated_stream_is_refused() -> None:
    body = gzip.compress(BODY)[:-8]
    source = source_with(lambda _: answer(body, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(
        InvalidRowsError, match=r"^body is not valid gzip: the compressed stream is truncated$"
    ):
        await source.fetch()


@pytest.mark.parametrize("chunk_size", [7, 50, 200])
def test_the_decoder_never_produces_more_than_limit_plus_one(chunk_size: int) -> None:
    # Incompressible bytes first, so output arrives over several chunks before the bomb.
    data = random.Random(0).randbytes(700) + bytes(200_000)
    encoded = gzip.compress(data)
    limit = 1000
    decoder = _CappedDecoder("gzip", limit)
    produced = 0
    for start in range(0, len(encoded), chunk_size):
        produced += len(decoder.decode(encoded[start : start + chunk_size]))
        if produced > limit:  # the source stops reading here
            break
    assert produced == limit + 1


@pytest.mark.parametrize(
    ("head", "wbits"),
    [
        (b"\x1f\x8b", 16 + zlib.MAX_WBITS),  # gzip
        (b"\x78\x9c", zlib.MAX_WBITS),  # zlib, default compression
        (b"\x00\x00", -zlib.MAX_WBITS),  # a multiple of 31, but not a deflate CMF
        (b"\x78\x00", -zlib.MAX_WBITS),  # a deflate CMF, but not a multiple of 31
        (b"\x88\x1c", -zlib.MAX_WBITS),  # a multiple of 31, window over 32 KiB
    ],
)
def test_the_format_is_told_from_the_first_two_bytes(head: bytes, wbits: int) -> None:
    assert _wbits(head) == wbits
