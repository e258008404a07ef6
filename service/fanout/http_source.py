"""A source that is an HTTP URL serving a JSON array of ``{id, name}`` items."""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from typing import Any, cast

import httpx
import orjson

from ..platform.bulkhead import Bulkhead
from ..platform.redact import redact_url, short_repr
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
        # Compressed bodies are decoded here, under the size limit (see _CappedDecoder).
        headers={"Accept": "application/json", "Accept-Encoding": "gzip, deflate"},
    )


class HttpJsonSource:
    """A :class:`~service.source.Source` that GETs a JSON array from ``url``.

    The body is streamed and abandoned as soon as it passes ``max_body_bytes``, so
    a huge or endless body cannot eat memory; a server that trickles bytes is cut
    off by the deadline. A gzip or deflate (zlib-wrapped or raw) body is decoded
    under the same limit. Redirects are followed only when ``follow_redirects``.
    Errors name the URL without its userinfo or query values: they are logged.
    """

    def __init__(
        self,
        name: str,
        url: str,
        client: httpx.AsyncClient,
        *,
        max_body_bytes: int,
        follow_redirects: bool = False,
        bulkhead: Bulkhead | None = None,
    ) -> None:
        self._name = name
        # The client's pool size: reads past it wait (or fail as busy) here, not in httpx.
        self._bulkhead: AbstractAsyncContextManager[None] = bulkhead or nullcontext()
        self._url = url
        self._client = client
        self._max_body_bytes = max_body_bytes
        self._follow_redirects = follow_redirects

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        """Where the source is read from; it may hold credentials (log :func:`redact_url` of it)."""
        return self._url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {redact_url(self._url)}>"

    async def fetch(self) -> Sequence[Mapping[str, Any]]:
        async with self._bulkhead:  # the connection is back in httpx's pool by the block's end
            body = await self._read_body()
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRowsError(f"body is not JSON: {exc}") from exc
        if not isinstance(document, list):
            raise InvalidRowsError(f"JSON is a {type(document).__name__}, not an array")
        return document

    async def check(self) -> None:
        async with (
            self._bulkhead,
            self._client.stream(
                "GET", self._url, follow_redirects=self._follow_redirects
            ) as response,
        ):
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
            decoder = _CappedDecoder(response.headers.get("Content-Encoding", ""), limit)
            body = bytearray()
            # The raw (still encoded) bytes: httpx's own decoding would inflate a whole
            # chunk at once, so a small compressed body could expand past any limit.
            # aiter_raw is an async generator: close it at once when leaving it early.
            chunks_gen = cast(AsyncGenerator[bytes, None], response.aiter_raw())
            async with aclosing(chunks_gen) as chunks:
                async for chunk in chunks:
                    body += decoder.decode(chunk)
                    if len(body) > limit:
                        raise BodyTooLargeError(f"body is over the limit of {limit} bytes")
            decoder.finish()
            return bytes(body)


class _CappedDecoder:
    """Decodes a body chunk by chunk, never producing more than ``limit + 1`` bytes in all.

    One byte past the limit is enough to tell a body over the limit from one exactly
    at it, so a compressed body is never inflated further than that. Refuses (as
    :class:`InvalidRowsError`) a compressed body that is corrupt, truncated, or has
    bytes after the end of its compressed stream.
    """

    def __init__(self, content_encoding: str, limit: int) -> None:
        encoding = content_encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise HttpStatusError(f"unsupported Content-Encoding {short_repr(content_encoding)}")
        self._encoding = encoding if encoding not in ("", "identity") else None
        self._limit = limit
        self._head = b""  # the first bytes of a compressed body, until its format is known
        self._inflater: zlib._Decompress | None = None
        self._produced = 0

    def decode(self, chunk: bytes) -> bytes:
        if self._encoding is None:
            return chunk
        if self._inflater is None:
            self._head += chunk
            if len(self._head) < 2:
                return b""
            self._inflater = zlib.decompressobj(_wbits(self._head))
            chunk, self._head = self._head, b""
        try:
            out = self._inflater.decompress(chunk, self._limit + 1 - self._produced)
        except zlib.error as exc:
            raise self._invalid(str(exc)) from exc
        if self._inflater.unused_data:
            # A second gzip member is legal (RFC 1952) but no HTTP server sends one.
            raise self._invalid("data after the end of the compressed stream")
        self._produced += len(out)
        return out

    def finish(self) -> None:
        """Raise unless the compressed stream ended (an empty body is left to the caller)."""
        if self._encoding is None or (self._inflater is None and not self._head):
            return
        if self._inflater is None or not self._inflater.eof:
            raise self._invalid("the compressed stream is truncated")

    def _invalid(self, reason: str) -> InvalidRowsError:
        return InvalidRowsError(f"body is not valid {self._encoding}: {reason}")


def _wbits(head: bytes) -> int:
    """zlib's ``wbits`` for a compressed body that starts with ``head`` (2 bytes or more).

    HTTP's ``deflate`` is meant to be zlib-wrapped (RFC 9110), but servers send raw
    deflate under that name too; ``gzip`` is sometimes mislabelled as well. So the
    format is told from the first bytes: gzip starts with ``1f 8b``; zlib with a
    CMF byte naming deflate (low nibble 8, window at most 32 KiB) and a FLG byte
    that makes ``CMF * 256 + FLG`` a multiple of 31 (RFC 1950). Anything else is
    taken as raw deflate (RFC 1951). A raw stream could only look like a zlib header
    by starting with a stored block whose padding bits are not zero, which encoders
    never write.
    """
    if head.startswith(b"\x1f\x8b"):
        return 16 + zlib.MAX_WBITS
    cmf, flg = head[0], head[1]
    if cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS


def _raise_for_status(response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        # The URL may carry a password or an API key, and this message is logged.
        raise HttpStatusError(f"HTTP {response.status_code} from {redact_url(str(response.url))}")
