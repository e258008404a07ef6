"""An ASGI middleware: a connection stays usable, or closes cleanly, when the app answers
before it has read the request body (a 401, 404, 405 or 413, ``GET /health`` with a body).

Two upstream behaviours meet here (hypercorn 0.18's trio worker with its h11 protocol,
quart-trio 0.12):

- ``hypercorn.protocol.h11.H11Protocol._maybe_recycle`` runs inside the app's final
  ``send``. It keeps the connection alive only when the client's request is complete too
  (``their_state is DONE``); otherwise, and after any ``Connection: close`` answer, it
  closes the connection (``TCPServer._close``: ``send_eof``, ``aclose``). On the way it
  delivers ``http.disconnect`` to the app.
- ``quart_trio.asgi.TrioASGIHTTPConnection.handle_messages`` cancels the request's nursery
  when it receives that ``http.disconnect``: the close half-way through the same ``send``
  is cancelled at its first checkpoint. The connection stays open with no stream, its
  unread body and any next request are never parsed (``_handle_events`` stops while
  ``stream is None``), and no idle timer runs: the next request on it never gets an answer,
  and the connection is never closed. The same cancellation also hits ``Updated(idle=True)``
  after an ordinary keep-alive answer, so hypercorn's ``keep_alive_timeout`` never closed an
  idle connection either. (No upstream issue found for either; work around both here.)

So, for each HTTP request whose body the app left unread when it finished its answer:

- a remainder of at most ``keep_alive_drain_bytes`` is read and discarded (for up to
  ``drain_s``) before the answer's last message, so the connection is kept alive;
- a larger or unknown remainder gets ``Connection: close`` on the answer, then a lingering
  close: the client's bytes are read and discarded for up to ``linger_s`` or
  ``linger_bytes`` before the connection closes. A client still sending (httpx sends its
  whole body before it reads) then reads the answer instead of a reset: closing a socket
  with unread data makes the kernel send RST, and that drops the answer it has not read.

And the answer's last message is sent shielded (for at most ``finish_s``), so hypercorn's
close or keep-alive bookkeeping inside it is never cancelled half-way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPDisconnectEvent,
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPScope,
    Scope,
)

__all__ = ["DrainUnreadBody"]

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]

#: Versions whose connections ``Connection: close`` applies to (HTTP/2 forbids the header).
_HTTP1 = {"1.0", "1.1"}
_CLOSE = (b"connection", b"close")
_DISCONNECT: HTTPDisconnectEvent = {"type": "http.disconnect"}
_LAST: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}


class DrainUnreadBody:
    """Wraps an ASGI app (``app.asgi_app = DrainUnreadBody(app.asgi_app)``); see the module."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keep_alive_drain_bytes: int = 64 * 1024,
        drain_s: float = 5.0,
        linger_bytes: int = 64 * 1024 * 1024,
        linger_s: float = 10.0,
        finish_s: float = 5.0,
    ) -> None:
        self.app = app
        self.keep_alive_drain_bytes = keep_alive_drain_bytes
        self.drain_s = drain_s
        self.linger_bytes = linger_bytes
        self.linger_s = linger_s
        self.finish_s = finish_s

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":  # WebSockets and the lifespan pass through untouched
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, scope, receive, send)
        # Without a body to account for, the app receives from the server directly.
        await self.app(scope, receive if exchange.complete else exchange.receive, exchange.send)


def _declared_length(scope: HTTPScope) -> int | None:
    """The request body's length: its Content-Length, 0 without a body, None if chunked."""
    length: int | None = 0
    for name, value in scope["headers"]:
        name = bytes(name).lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length


class _Exchange:
    """One request: what of its body came in, and the answer's way out."""

    def __init__(
        self,
        policy: DrainUnreadBody,
        scope: HTTPScope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
    ) -> None:
        self._policy = policy
        self._http1 = scope["http_version"] in _HTTP1
        self._receive = receive
        self._send = send
        self._declared = _declared_length(scope)
        self._received = 0
        self.complete = self._declared == 0
        self._disconnected = False
        self._closing = False
        # One receiver at a time: the app's receive loop (quart-trio runs one until
        # ``http.disconnect``) and the drain below share the server's channel.
        self._lock = trio.Lock()
        self._discarding = False
        self._drained = trio.Event()

    async def _pull(self, *, draining: bool = False) -> ASGIReceiveEvent | None:
        """The next message from the server, accounted for; for the drain, None once the
        body is complete or the client gone (perhaps while it waited for its turn)."""
        async with self._lock:
            if draining and (self.complete or self._disconnected):
                return None
            message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
        elif message["type"] == "http.disconnect":
            self._disconnected = True
        return message

    async def receive(self) -> ASGIReceiveEvent:
        """The app's receive: the server's messages, except that a body being discarded
        reaches the app empty."""
        if self._discarding:
            await self._drained.wait()
            if self._disconnected:  # the drain received it
                return _DISCONNECT
        message = await self._pull()
        assert message is not None
        if self._discarding and message["type"] == "http.request":
            empty: HTTPRequestEvent = {
                "type": "http.request",
                "body": b"",
                "more_body": message.get("more_body", False),
            }
            return empty
        return message

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.complete and self._http1:
            remaining = None if self._declared is None else self._declared - self._received
            if remaining is None or remaining > self._policy.keep_alive_drain_bytes:
                self._closing = True
                headers = list(message.get("headers", ()))
                if _CLOSE not in headers:
                    message = {**message, "headers": [*headers, _CLOSE]}
        if message["type"] != "http.response.body" or message.get("more_body", False):
            await self._send(message)
            return
        if not self.complete:
            if message.get("body"):  # the client gets the whole answer before the drain
                await self._send({**message, "more_body": True})
                message = _LAST
            if self._closing:
                await self._drain(self._policy.linger_bytes, self._policy.linger_s)
            else:
                await self._drain(self._policy.keep_alive_drain_bytes, self._policy.drain_s)
        with trio.move_on_after(self._policy.finish_s, shield=True):
            await self._send(message)

    async def _drain(self, max_bytes: int, timeout_s: float) -> None:
        """Read and discard the rest of the body: up to ``max_bytes`` more, for up to
        ``timeout_s``. What is left unread then makes the server close the connection."""
        self._discarding = True
        limit = self._received + max_bytes
        try:
            with trio.move_on_after(timeout_s):
                while self._received <= limit and await self._pull(draining=True) is not None:
                    pass
        finally:
            self._drained.set()
