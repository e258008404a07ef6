"""The fault proxy's own tests: what it recognises in PostgreSQL's handshake.

A fake server stands in for PostgreSQL: it answers SSLRequest and GSSENCRequest with
a chosen byte, closes a connection that brings a CancelRequest (as PostgreSQL does),
answers a startup message with AuthenticationOk and ReadyForQuery, and reports every
byte each connection brought.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio

from tests.support.tcp_proxy import FaultProxy, Upstream

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)
CANCEL_REQUEST = struct.pack("!iiii", 16, 80877102, 4242, 123456789)
_PARAMS = b"user\x00postgres\x00database\x00postgres\x00\x00"
STARTUP = struct.pack("!ii", 8 + len(_PARAMS), 196608) + _PARAMS
AUTH_OK_AND_READY = b"R\x00\x00\x00\x08\x00\x00\x00\x00Z\x00\x00\x00\x05I"

_CODES = {80877103: "ssl", 80877104: "gss"}


@dataclass
class FakeServer:
    """Answers each encryption request with ``answers[kind]`` (``"ssl"``/``"gss"``)."""

    answers: dict[str, bytes] = field(default_factory=lambda: {"ssl": b"N", "gss": b"N"})
    send: trio.MemorySendChannel[bytes] | None = None

    async def handle(self, stream: trio.SocketStream) -> None:
        got = bytearray()
        negotiated = 0  # bytes of encryption requests answered so far
        plain = True
        async with stream:
            while data := await stream.receive_some(65536):
                got += data
                while plain and len(got) >= negotiated + 8:
                    _, code = struct.unpack_from("!ii", got, negotiated)
                    kind = _CODES.get(code)
                    if kind is None:
                        break
                    answer = self.answers[kind]
                    await stream.send_all(answer)
                    negotiated += 8
                    plain = answer == b"N"
                rest = got[negotiated:]
                if plain and rest.startswith(CANCEL_REQUEST[:8]) and len(rest) >= 16:
                    break  # PostgreSQL closes a cancel request's connection
                if plain and rest == STARTUP:
                    await stream.send_all(AUTH_OK_AND_READY)
        assert self.send is not None
        await self.send.send(bytes(got))


@dataclass
class Rig:
    proxy: FaultProxy
    server_saw: trio.MemoryReceiveChannel[bytes]

    async def next_server_connection(self) -> bytes:
        """Every byte the fake server received on its next connection to end."""
        with trio.fail_after(2):
            return await self.server_saw.receive()


@asynccontextmanager
async def rig(answers: dict[str, bytes] | None = None) -> AsyncIterator[Rig]:
    server = FakeServer() if answers is None else FakeServer(answers)
    send, receive = trio.open_memory_channel[bytes](10)
    server.send = send
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        proxy = FaultProxy(Upstream(host="127.0.0.1", port=port))
        await nursery.start(proxy.serve)
        yield Rig(proxy, receive)
        nursery.cancel_scope.cancel()


async def send_in_pieces(stream: trio.abc.Stream, data: bytes, chunked: bool) -> None:
    """Send ``data`` whole, or a byte at a time (the proxy must reassemble it)."""
    if not chunked:
        await stream.send_all(data)
        return
    for i in range(len(data)):
        await stream.send_all(data[i : i + 1])
        await trio.sleep(0.001)


async def receive_until_closed(stream: trio.abc.Stream) -> bytes:
    got = bytearray()
    with trio.fail_after(2):
        while data := await stream.receive_some(65536):
            got += data
    return bytes(got)


async def negotiate(stream: trio.abc.Stream, requests: list[bytes], chunked: bool) -> None:
    """Send each encryption request and expect the server's "N" through the proxy."""
    for request in requests:
        await send_in_pieces(stream, request, chunked)
        with trio.fail_after(2):
            assert await stream.receive_some(1) == b"N"


PLAIN_NEGOTIATIONS = pytest.mark.parametrize(
    "requests",
    [[], [SSL_REQUEST], [GSSENC_REQUEST], [GSSENC_REQUEST, SSL_REQUEST]],
    ids=["none", "ssl", "gssenc", "gssenc-then-ssl"],
)


@PLAIN_NEGOTIATIONS
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "byte-by-byte"])
async def test_drop_cancel_drops_a_cancel_request_after_declined_encryption(
    requests: list[bytes], chunked: bool
) -> None:
    async with rig() as r:
        r.proxy.set_mode("drop_cancel")
        client = await trio.open_tcp_stream("127.0.0.1", r.proxy.port)
        async with client:
            await negotiate(client, requests, chunked)
            await send_in_pieces(client, CANCEL_REQUEST, chunked)
            assert await receive_until_closed(client) == b""
        assert r.proxy.cancels_dropped == 1
        if requests:  # the server was needed for its answers, and never saw the cancel
            assert await r.next_server_connection() == b"".join(requests)


@PLAIN_NEGOTIATIONS
async def test_drop_cancel_relays_a_startup_message(requests: list[bytes]) -> None:
    async with rig() as r:
        r.proxy.set_mode("drop_cancel")
        client = await trio.open_tcp_stream("127.0.0.1", r.proxy.port)
        async with client:
            await negotiate(client, requests, chunked=False)
            await client.send_all(STARTUP)
            got = bytearray()
            with trio.fail_after(2):
                while len(got) < len(AUTH_OK_AND_READY):
                    got += await client.receive_some(65536)
            assert got == AUTH_OK_AND_READY
        assert await r.next_server_connection() == b"".join(requests) + STARTUP
        assert r.proxy.cancels_dropped == 0


@PLAIN_NEGOTIATIONS
async def test_pass_relays_a_cancel_request(requests: list[bytes]) -> None:
    async with rig() as r:
        client = await trio.open_tcp_stream("127.0.0.1", r.proxy.port)
        async with client:
            await negotiate(client, requests, chunked=False)
            await client.send_all(CANCEL_REQUEST)
            assert await receive_until_closed(client) == b""
        assert await r.next_server_connection() == b"".join(requests) + CANCEL_REQUEST
        assert r.proxy.cancels_dropped == 0


@pytest.mark.parametrize(
    ("request_", "answer"), [(SSL_REQUEST, b"S"), (GSSENC_REQUEST, b"G")], ids=["tls", "gssenc"]
)
async def test_an_encrypted_connection_is_opaque(request_: bytes, answer: bytes) -> None:
    """Once the server accepts encryption, the proxy cannot read the messages: it relays them."""
    async with rig({"ssl": answer, "gss": answer}) as r:
        r.proxy.set_mode("drop_cancel")
        client = await trio.open_tcp_stream("127.0.0.1", r.proxy.port)
        async with client:
            await client.send_all(request_)
            with trio.fail_after(2):
                assert await client.receive_some(1) == answer
            # Inside TLS these bytes would be encrypted; whatever they look like, they pass.
            await client.send_all(CANCEL_REQUEST)
            await client.send_eof()
            assert await receive_until_closed(client) == b""
        assert await r.next_server_connection() == request_ + CANCEL_REQUEST
        assert r.proxy.cancels_dropped == 0
