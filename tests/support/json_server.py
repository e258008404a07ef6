"""A small HTTP/1.1 server on trio that misbehaves on purpose, for the HTTP source tests.

Each path is a behaviour: ``/healthy`` answers a JSON array (keep-alive), ``/slow``
answers it late, ``/hang`` sends headers and then nothing, ``/trickle`` sends a byte
every 50 ms for ever, ``/error`` is a 500, ``/garbage`` is not JSON, ``/object`` and
``/bad-item`` have the wrong shape, ``/huge`` declares a body over any sane limit,
``/endless`` streams chunks for ever, ``/redirect`` is a 302 to ``/healthy``;
``/gzip``, ``/deflate`` (zlib-wrapped) and ``/deflate-raw`` (no header) answer the
array compressed, in two writes.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio
import trio.lowlevel

MAX_HEAD = 16 * 1024


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


#: path -> (Content-Encoding, encoder)
ENCODED: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "/gzip": ("gzip", gzip.compress),
    "/deflate": ("deflate", zlib.compress),
    "/deflate-raw": ("deflate", _raw_deflate),
}


@dataclass
class JsonServer:
    rows: Sequence[dict[str, Any]]
    slow_s: float = 3.0
    port: int = 0
    requests: list[str] = field(default_factory=list)
    connections: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def serve(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._connection, listeners, task_status=task_status)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        try:
            async with stream:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = await stream.receive_some(4096)
                        if not data or len(buffer) > MAX_HEAD:
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    # The query string (an API key, say) selects nothing: the path does.
                    path = head.split(b" ", 2)[1].decode().partition("?")[0]
                    self.requests.append(path)
                    if not await self._respond(stream, path):
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _respond(self, stream: trio.SocketStream, path: str) -> bool:
        """Answer one request; True to keep the connection for the next one."""
        body = orjson.dumps(list(self.rows))
        if path == "/healthy":
            await stream.send_all(_head(200, len(body)) + body)
            return True
        if path == "/slow":
            await trio.sleep(self.slow_s)
            await stream.send_all(_head(200, len(body)) + body)
            return True
        if path == "/hang":
            await stream.send_all(_head(200, len(body)))
            await trio.sleep_forever()
        if path == "/trickle":
            await stream.send_all(_head(200, None) + _chunk(b"["))
            while True:
                await trio.sleep(0.05)
                await stream.send_all(_chunk(b" "))
        if path == "/error":
            error = b'{"error": "boom"}'
            await stream.send_all(_head(500, len(error)) + error)
            return True
        if path in ("/garbage", "/object", "/bad-item"):
            payload = {
                "/garbage": b"this is not JSON {",
                "/object": b'{"id": 1, "name": "Test 1"}',
                "/bad-item": b'[{"id": 1, "name": "Test 1"}, {"id": "2", "name": "Test 2"}]',
            }[path]
            await stream.send_all(_head(200, len(payload)) + payload)
            return True
        if path == "/huge":
            await stream.send_all(_head(200, 50 * 1024 * 1024) + b"[" + b" " * 65536)
            await trio.sleep_forever()
        if path == "/endless":
            await stream.send_all(_head(200, None) + _chunk(b"["))
            while True:
                await stream.send_all(_chunk(b" " * 65536))
                await trio.lowlevel.checkpoint()
        if path in ENCODED:
            encoding, encode = ENCODED[path]
            payload = encode(body)
            await stream.send_all(_head(200, len(payload), encoding) + payload[:5])
            await trio.sleep(0.01)  # so the client most likely reads it in two pieces
            await stream.send_all(payload[5:])
            return True
        if path == "/redirect":
            await stream.send_all(
                b"HTTP/1.1 302 Found\r\nLocation: /healthy\r\nContent-Length: 0\r\n\r\n"
            )
            return True
        await stream.send_all(_head(404, 0))
        return True


def _head(status: int, length: int | None, encoding: str | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    if encoding is not None:
        framing += f"\r\nContent-Encoding: {encoding}"
    return f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)
