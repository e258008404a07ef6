"""Shared by several tests (from tests/fanout/test_http_source.py)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import httpx
import orjson
import trio
import trio.lowlevel
import trio.testing

from service.fanout.http_source import HttpJsonSource

URL = "http://source.test/data.json"


ROWS = [{"id": 2, "name": "Test 2"}, {"id": 1, "name": "Test 1"}]


BODY = orjson.dumps(ROWS)


class Chunks(httpx.AsyncByteStream):
    """A response body handed over piece by piece, as a network delivers it."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self.sent = 0  # bytes handed to the client so far
        self.closed = False

    # An iterator, not an async generator: httpx abandons the stream when the source
    # stops reading early, and trio warns about an async generator left unfinished.
    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()  # as a network read would
        piece = next(self._pieces, None)
        if piece is None:
            raise StopAsyncIteration
        self.sent += len(piece)
        return piece

    async def aclose(self) -> None:
        self.closed = True


def split(body: bytes, pieces: int = 3) -> list[bytes]:
    """``body`` cut into ``pieces`` parts of about equal size (fewer if it is shorter)."""
    size = max(1, -(-len(body) // pieces))
    return [body[start : start + size] for start in range(0, len(body), size)]


def answer(
    body: bytes,
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
    pieces: int = 3,
) -> httpx.Response:
    """A response whose ``body`` is streamed in ``pieces`` parts."""
    return httpx.Response(status, headers=headers, stream=Chunks(split(body, pieces)))


def json_answer(document: Any, status: int = 200) -> httpx.Response:
    return answer(orjson.dumps(document), status, headers={"Content-Type": "application/json"})


def source_with(
    handler: Callable[[httpx.Request], Any],
    *,
    max_body_bytes: int = 1024,
    follow: bool = False,
    url: str = URL,
) -> HttpJsonSource:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpJsonSource(
        "remote", url, client, max_body_bytes=max_body_bytes, follow_redirects=follow
    )


def raw_deflate(data: bytes) -> bytes:
    """``data`` as a bare deflate stream, without a zlib or gzip header."""
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


#: format -> (Content-Encoding, encoder). HTTP's "deflate" is meant to be zlib-wrapped
#: (RFC 9110), but servers send raw deflate under that name too.
ENCODINGS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "zlib": ("deflate", zlib.compress),
    "raw-deflate": ("deflate", raw_deflate),
}


def compressed(body: bytes, fmt: str, *, pieces: int = 3) -> httpx.Response:
    """A response with ``body`` encoded in ``fmt`` (a key of ENCODINGS), streamed in pieces."""
    encoding, encode = ENCODINGS[fmt]
    return answer(encode(body), headers={"Content-Encoding": encoding}, pieces=pieces)


def corrupt(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
