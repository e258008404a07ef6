"""Fake remote service and stats endpoint for the image pipeline's tests and benchmark: a
plain HTTP/1.1 server on trio sockets (keep-alive, Content-Length bodies).

``POST /remote`` answers ``{"bytes": N}`` after ``remote_delay_s``; each image (header
``X-Image-Name``) gets a 503 for its first ``fail_first`` calls and no answer at all for
its first ``hang_first`` calls; ``POST /reject`` always answers 400; ``POST /bad-gzip``
answers 200 with a body that claims gzip and is not; ``POST /moved`` answers 302;
``POST /busy`` answers 429 (``Retry-After: 1``) to each image's first ``busy_first`` calls,
then like ``/remote``; while ``down`` is set, ``/remote`` answers 503 to every call.
Once ``hold_from`` calls have been answered, ``/remote`` holds every new call unanswered.
``POST /stats`` keeps the JSON report after ``stats_delay_s``. Calls are counted per image name."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
import trio

__all__ = ["ImageServices"]

_MAX_HEAD = 16 * 1024
#: Headers some answers carry besides Content-Type and Content-Length.
_EXTRA_HEADERS = {
    ("/bad-gzip", 200): "Content-Encoding: gzip\r\n",
    ("/moved", 302): "Location: /remote\r\n",
    ("/busy", 429): "Retry-After: 1\r\n",
}


@dataclass
class ImageServices:
    remote_delay_s: float = 0.0
    stats_delay_s: float = 0.0
    fail_first: int = 0
    hang_first: int = 0
    busy_first: int = 0
    down: bool = False
    hold_from: int | None = None
    port: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    reports: list[dict[str, Any]] = field(default_factory=list)
    _waiters: list[tuple[int, trio.Event]] = field(default_factory=list)

    async def wait_answered(self, count: int) -> None:
        """Return once the remote has answered ``count`` calls in all."""
        if self.answered.total() < count:
            event = trio.Event()
            self._waiters.append((count, event))
            await event.wait()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._connection, listeners)
            task_status.started()

    async def _connection(self, stream: trio.SocketStream) -> None:
        buffer = b""
        try:
            async with stream:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = await stream.receive_some(65536)
                        if not data or len(buffer) > _MAX_HEAD:
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    path = lines[0].split(" ")[1]
                    headers = {
                        name.strip().lower(): value.strip()
                        for name, _, value in (line.partition(":") for line in lines[1:])
                    }
                    length = int(headers.get("content-length", "0"))
                    while len(buffer) < length:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        buffer += data
                    body, buffer = buffer[:length], buffer[length:]
                    status, answer = await self._respond(path, headers, body)
                    extra = _EXTRA_HEADERS.get((path, status), "")
                    await stream.send_all(
                        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
                        f"Content-Length: {len(answer)}\r\n\r\n".encode()
                        + answer
                    )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _respond(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if path in ("/bad-gzip", "/moved"):
            self.calls[unquote(headers.get("x-image-name", ""))] += 1
            return (200, b"this is not gzip") if path == "/bad-gzip" else (302, b"{}")
        if path == "/busy":
            name = unquote(headers.get("x-image-name", ""))
            self.calls[name] += 1
            if self.calls[name] <= self.busy_first:
                return 429, b'{"error": "slow down"}'
            return 200, orjson.dumps({"bytes": len(body)})
        if path == "/remote":
            name = unquote(headers.get("x-image-name", ""))
            self.calls[name] += 1
            if self.down:
                return 503, b'{"error": "down"}'
            if self.hold_from is not None and self.answered.total() >= self.hold_from:
                await trio.sleep_forever()
            if self.calls[name] <= self.hang_first:
                await trio.sleep_forever()
            if self.calls[name] <= self.hang_first + self.fail_first:
                return 503, b'{"error": "try again"}'
            await trio.sleep(self.remote_delay_s)
            self.answered[name] += 1
            for count, event in self._waiters:
                if self.answered.total() >= count:
                    event.set()
            return 200, orjson.dumps({"bytes": len(body)})
        if path == "/reject":
            self.calls[unquote(headers.get("x-image-name", ""))] += 1
            return 400, b'{"error": "not an image I take"}'
        if path == "/stats":
            await trio.sleep(self.stats_delay_s)
            self.reports.append(orjson.loads(body))
            return 200, b"{}"
        return 404, b'{"error": "no such path"}'
