"""A source that is an HTTP URL serving a JSON array of ``{id, name}`` items."""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast

import httpx
import orjson

from .rows import InvalidRowsError

__all__ = ["BodyTooLargeError", "HttpJsonSource", "HttpStatusError", "open_http_client"]


class HttpStatusError(Exception):
    """The source answered with a status other than 2xx (redirects included, unless followed)."""


class BodyTooLargeError(Exception):
    """The source's body is larger than its limit; it was not read to the end."""


def open_http_client(*, max_connections: int) -> httpx.AsyncClient:
    """An HTTP source's client, one per source and worker (use it as ``async with``).

    Its connections are kept alive and reused.

    httpx's own timeouts are per phase (connect, each read), not for the whole
    request, so they are off: the fan-out's trio cancel scope is the deadline.
    Proxy variables in the environment are ignored (``trust_env=False``): sources
    are addressed directly.
    """
    return httpx.AsyncClient(
        timeout=None,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        trust_env=False,
        # Compressed bodies are decoded here, under the size limit (see _read_body).
        headers={"Accept": "application/json", "Accept-Encoding": "gzip, deflate"},
    )


class HttpJsonSource:
    """A :class:`~service.source.Source` that GETs a JSON array from ``url``.

    The body is streamed and abandoned as soon as it passes ``max_body_bytes``, so
    a huge or endless body cannot eat memory; a server that trickles bytes is cut
    off by the deadline. Redirects are followed only when ``follow_redirects``.
    """

    def __init__(
        self,
        name: str,
        url: str,
        client: httpx.AsyncClient,
        *,
        max_body_bytes: int,
        follow_redirects: bool = False,
    ) -> None:
        self._name = name
        self._url = url
        self._client = client
        self._max_body_bytes = max_body_bytes
        self._follow_redirects = follow_redirects

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        """Where the source is read from."""
        return self._url

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        body = await self._read_body()
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRowsError(f"body is not JSON: {exc}") from exc
        if not isinstance(document, list):
            raise InvalidRowsError(f"JSON is a {type(document).__name__}, not an array")
        return document

    async def check(self) -> None:
        async with self._client.stream(
            "GET", self._url, follow_redirects=self._follow_redirects
        ) as response:
            _raise_for_status(response)

    async def _read_body(self) -> bytes:
        limit = self._max_body_bytes
        async with self._client.stream(
            "GET", self._url, follow_redirects=self._follow_redirects
        ) as response:
            _raise_for_status(response)
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise BodyTooLargeError(
                    f"Content-Length {declared} is over the limit of {limit} bytes"
                )
            decoder = _capped_decoder(response.headers.get("Content-Encoding", ""), limit)
            body = bytearray()
            # The raw (still encoded) bytes: httpx's own decoding would inflate a whole
            # chunk at once, so a small compressed body could expand past any limit.
            # aiter_raw is an async generator: close it at once when leaving it early.
            chunks_gen = cast(AsyncGenerator[bytes, None], response.aiter_raw())
            async with aclosing(chunks_gen) as chunks:
                async for chunk in chunks:
                    body += decoder(chunk)
                    if len(body) > limit:
                        raise BodyTooLargeError(f"body is over the limit of {limit} bytes")
            return bytes(body)


def _capped_decoder(content_encoding: str, limit: int) -> Callable[[bytes], bytes]:
    """Decode a body chunk by chunk, never producing more than ``limit`` + 1 bytes in all."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return lambda chunk: chunk
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise HttpStatusError(f"unsupported Content-Encoding {content_encoding!r}")
    # wbits 47: gzip or zlib header, detected; raw deflate is tried if that fails.
    inflater = zlib.decompressobj(47)
    produced = 0

    def decode(chunk: bytes) -> bytes:
        nonlocal produced
        try:
            out = inflater.decompress(chunk, limit + 1 - produced)
        except zlib.error as exc:
            raise InvalidRowsError(f"body is not valid {encoding}: {exc}") from exc
        produced += len(out)
        return out

    return decode


def _raise_for_status(response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        raise HttpStatusError(f"HTTP {response.status_code} from {response.url}")
