"""The unread-body middleware on a fake ASGI server (trio's virtual clock): a small unread
body is read before the answer's last message, a large one gets ``Connection: close`` and a
bounded linger, a stalled client is waited for a bounded time, the last message survives
the app's own cancellation, and everything else passes through untouched."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from service.platform.unread_body import DrainUnreadBody

Message = dict[str, Any]
CLOSE = (b"connection", b"close")


class FakeServer:
    """The server side of one HTTP request: the client's body messages, and what the app sent
    (each with the time it came and how much of the body had been taken by then)."""

    def __init__(self, content_length: int | None) -> None:
        headers = [(b"host", b"test")]
        if content_length is None:
            headers.append((b"transfer-encoding", b"chunked"))
        else:
            headers.append((b"content-length", str(content_length).encode()))
        self.scope: dict[str, Any] = {"type": "http", "http_version": "1.1", "headers": headers}
        self._to_app, self._from_client = trio.open_memory_channel[Message](10)
        self.taken = 0
        self.sent: list[tuple[Message, float, int]] = []
        self.on_last: Callable[[], Awaitable[None]] | None = None

    async def client_sends(self, chunk: bytes, *, more: bool) -> None:
        await self._to_app.send({"type": "http.request", "body": chunk, "more_body": more})

    async def disconnect(self) -> None:
        await self._to_app.send({"type": "http.disconnect"})

    async def receive(self) -> Message:
        message = await self._from_client.receive()
        self.taken += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        self.sent.append((message, trio.current_time(), self.taken))
        last = message["type"] == "http.response.body" and not message.get("more_body")
        if last and self.on_last is not None:
            await self.on_last()

    def start_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0][0]["headers"])

    def last(self) -> tuple[Message, float, int]:
        return self.sent[-1]


async def serve(server: FakeServer, app: Any, **bounds: Any) -> None:
    """Run ``app`` behind the middleware (with ``bounds``) for the fake server's request."""
    middleware: Any = DrainUnreadBody(app, **bounds)
    await middleware(server.scope, server.receive, server.send)


async def early_answer(scope: Any, receive: Any, send: Any) -> None:
    """An app that answers without reading the body (and, like quart-trio, keeps a receive
    loop running until ``http.disconnect``)."""
    got: list[Message] = scope.setdefault("got", [])

    async def receive_loop() -> None:
        while True:
            message = await receive()
            got.append(message)
            if message["type"] == "http.disconnect":
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_loop)
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"{}", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        nursery.cancel_scope.cancel()


async def test_a_small_unread_body_is_read_before_the_last_message(
    autojump_clock: trio.abc.Clock,
) -> None:
    server = FakeServer(content_length=10)

    async def client() -> None:
        await trio.sleep(1)
        await server.client_sends(b"x" * 4, more=True)
        await trio.sleep(1)
        await server.client_sends(b"y" * 6, more=False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await serve(server, early_answer)
    assert CLOSE not in server.start_headers()
    message, at, taken = server.last()
    assert (message["more_body"], taken, at) == (False, 10, 2.0)
    # The app's own receive loop was handed the discarded body empty.
    assert all(m["body"] == b"" for m in server.scope["got"] if m["type"] == "http.request")


async def test_a_stalled_client_is_waited_for_drain_s_at_most(
    autojump_clock: trio.abc.Clock,
) -> None:
    server = FakeServer(content_length=2)
    await serve(server, early_answer, drain_s=3)
    message, at, taken = server.last()
    assert (message["more_body"], taken, at) == (False, 0, 3.0)


async def test_a_large_body_gets_connection_close_and_a_bounded_linger(
    autojump_clock: trio.abc.Clock,
) -> None:
    server = FakeServer(content_length=10_000_000)

    async def endless_client() -> None:
        while True:
            await server.client_sends(b"z" * 100, more=True)
            await trio.sleep(0.1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(endless_client)
        bounds = {"keep_alive_drain_bytes": 100, "linger_bytes": 1000, "linger_s": 30}
        await serve(server, early_answer, **bounds)
        nursery.cancel_scope.cancel()
    assert CLOSE in server.start_headers()
    _message, at, taken = server.last()
    assert 1000 < taken <= 1200  # stopped by the byte bound
    assert at < 2

    server = FakeServer(content_length=None)  # chunked: its length is unknown
    started = trio.current_time()
    await serve(server, early_answer, linger_s=4)
    assert CLOSE in server.start_headers()
    assert server.last()[1] - started == 4.0  # stopped by the time bound


async def test_a_client_gone_during_the_drain_ends_it_and_reaches_the_app(
    autojump_clock: trio.abc.Clock,
) -> None:
    server = FakeServer(content_length=10)

    async def client_leaves() -> None:
        await trio.sleep(1)
        await server.disconnect()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client_leaves)
        await serve(server, early_answer)
    assert server.scope["got"][-1] == {"type": "http.disconnect"}
    assert trio.current_time() == 1.0


async def test_the_last_message_is_sent_even_when_the_app_cancels_itself_meanwhile(
    autojump_clock: trio.abc.Clock,
) -> None:
    # As quart-trio does: the server hands http.disconnect to the app inside the last
    # send, the app's receive loop cancels the request, and the server's close awaits.
    server = FakeServer(content_length=0)
    finished: list[bool] = []

    async def disconnect_then_close() -> None:
        await server.disconnect()
        await trio.sleep(0.5)  # the server's close, with its checkpoints
        finished.append(True)

    server.on_last = disconnect_then_close
    await serve(server, early_answer)
    assert finished == [True]


async def test_a_body_the_app_reads_and_websockets_pass_untouched() -> None:
    server = FakeServer(content_length=5)
    read: list[bytes] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        read.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})

    await server.client_sends(b"hello", more=False)
    await serve(server, reader)
    assert read == [b"hello"]
    assert [m for m, _at, _taken in server.sent] == [
        {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]},
        {"type": "http.response.body", "body": b"ok", "more_body": False},
    ]

    seen: list[tuple[Any, Any]] = []

    async def websocket_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((receive, send))

    server.scope = {"type": "websocket"}
    await serve(server, websocket_app)
    assert seen == [(server.receive, server.send)]
