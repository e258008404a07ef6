"""A fault-injecting TCP proxy in front of PostgreSQL, on trio, for the tests.

Listens on 127.0.0.1 port 0 and forwards to a TCP address or a Unix socket.
Its ``mode`` (see ``MODES``) can be switched at any time: ``blackhole()`` makes the
network go silent (bytes in either direction are held for ever and no connection is
closed, as when a cable is pulled mid-query); other modes delay, reset, refuse, or
drop PostgreSQL's out-of-band cancel requests.

The proxy reads PostgreSQL's handshake: a client may open with an SSLRequest or a
GSSENCRequest (asyncpg sends an SSLRequest first with its default sslmode "prefer",
on its cancel connections too). The proxy relays the request and the server's one-byte
answer; while the server declines ("N"), the client's next message is read the same way,
so a CancelRequest after a declined SSLRequest is recognised. When the server accepts
("S": TLS follows, "G": GSSAPI encryption follows), or the client opens with a TLS
ClientHello (direct SSL), the proxy cannot read what follows: that connection is opaque.
Its bytes are relayed (or delayed, held, reset) as they come, but ``drop_cancel``,
``blackhole_mid_query`` and ``reset_mid_query``, which need to see the messages, never
apply to it. The test server speaks plain TCP, so the fault tests never meet this.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import trio


@dataclass
class Upstream:
    """Where the proxy forwards to: ``unix_path`` or ``host``/``port``."""

    host: str = "127.0.0.1"
    port: int = 5432
    unix_path: str | None = None
    user: str = "postgres"
    password: str = ""
    database: str = "postgres"

    @classmethod
    def from_dsn(cls, dsn: str) -> Upstream:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        user = parts.username or "postgres"
        password = parts.password or ""
        database = parts.path.lstrip("/") or user
        socket_dir = query.get("host", [None])[0] or (
            parts.hostname if parts.hostname and parts.hostname.startswith("/") else None
        )
        if socket_dir:
            port = int(query.get("port", [str(parts.port or 5432)])[0])
            return cls(
                unix_path=f"{socket_dir}/.s.PGSQL.{port}",
                user=user,
                password=password,
                database=database,
            )
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=user,
            password=password,
            database=database,
        )

    async def connect(self) -> trio.abc.Stream:
        if self.unix_path is not None:
            return await trio.open_unix_socket(self.unix_path)
        return await trio.open_tcp_stream(self.host, self.port)


#: How the proxy treats traffic; settable at any time (``proxy.mode = "..."``).
MODES = (
    "pass",  # forward everything
    "delay",  # forward each chunk after ``delay_s``
    "blackhole",  # hold every byte of every connection, existing and new
    "blackhole_after_connect",  # new connections: accepted, then nothing is forwarded
    "blackhole_mid_query",  # forward a query to the server, hold its answer for ever
    "drop_cancel",  # swallow PostgreSQL cancel requests; everything else passes
    "reset_mid_query",  # reset both sides when a query is sent
    "refuse",  # reset new connections at once
)

#: Request codes of the untyped messages a client may open with (after their length).
_CANCEL_REQUEST_CODE = 80877102
_MAX_CANCEL_REQUEST = 8 + 4 + 256  # protocol 3.2 allows a secret key of up to 256 bytes
_ENCRYPTION_REQUEST_CODES = (80877103, 80877104)  # SSLRequest, GSSENCRequest
_DECLINED = b"N"
_TLS_RECORD_HANDSHAKE = 0x16  # first byte of a ClientHello (direct SSL, PostgreSQL 17+)
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


@dataclass
class FaultProxy:
    """A TCP proxy in front of PostgreSQL whose network can misbehave on demand."""

    upstream: Upstream
    port: int = 0
    mode: str = "pass"
    delay_s: float = 0.1
    connections: int = 0
    cancels_dropped: int = 0
    _changed: trio.Event = field(default_factory=trio.Event)
    _live: set[trio.CancelScope] = field(default_factory=set)

    def dsn(self) -> str:
        auth = self.upstream.user + (f":{self.upstream.password}" if self.upstream.password else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{self.upstream.database}"

    def set_mode(self, mode: str) -> None:
        """Switch behaviour; connections held by an old mode re-check theirs."""
        assert mode in MODES, mode
        self.mode = mode
        self._changed.set()
        self._changed = trio.Event()

    def drop_connections(self) -> None:
        """Close every connection open now (the service must open new ones)."""
        for scope in list(self._live):
            scope.cancel()

    def blackhole(self) -> None:
        """The network goes silent: hold every byte in both directions."""
        self.set_mode("blackhole")

    def heal(self) -> None:
        """Forward again."""
        self.set_mode("pass")

    async def serve(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._handle, listeners, task_status=task_status)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        conn = _Connection(self, frozen_silent=self.mode == "blackhole_after_connect")
        if self.mode == "refuse":
            _reset(client)
            return
        with trio.CancelScope() as scope:
            self._live.add(scope)
            try:
                await self._proxy(client, conn)
            finally:
                self._live.discard(scope)

    async def _drops(self, client: trio.abc.Stream, head: bytearray) -> bool:
        """Whether the client's opening is a cancel request to swallow (read whole, counted)."""
        if self.mode != "drop_cancel" or _request_code(head) != _CANCEL_REQUEST_CODE:
            return False
        (length,) = struct.unpack_from("!i", head)
        await _receive_head(client, head, min(length, _MAX_CANCEL_REQUEST))
        self.cancels_dropped += 1
        return True

    async def _proxy(self, client: trio.SocketStream, conn: _Connection) -> None:
        async with client:
            head = await _receive_head(client)
            if not head or await self._drops(client, head):
                return
            try:
                server = await self.upstream.connect()
            except OSError:
                return
            async with server, trio.open_nursery() as nursery:
                conn.scope = nursery.cancel_scope
                conn.client, conn.server = client, server
                try:
                    rest = await conn.negotiate(head)
                    if rest is None:
                        return
                    await conn.forward(rest, to_server=True)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                nursery.start_soon(conn.pump, client, server, True)
                nursery.start_soon(conn.pump, server, client, False)


@dataclass
class _Connection:
    proxy: FaultProxy
    frozen_silent: bool
    opaque: bool = False  # encrypted (or unreadable): no message is recognised in it
    ready: bool = False
    query_sent: bool = False
    scope: trio.CancelScope | None = None
    client: trio.abc.Stream | None = None
    server: trio.abc.Stream | None = None

    def _holds(self, to_server: bool) -> bool:
        mode = self.proxy.mode
        if self.frozen_silent or mode == "blackhole":
            return True
        return mode == "blackhole_mid_query" and self.query_sent and not to_server

    async def negotiate(self, head: bytearray) -> bytearray | None:
        """Relay encryption requests and the server's answers until the client's real opening.

        ``head`` holds the client's first bytes (at least 8 unless the client closed).
        Returns the client's bytes still to forward, or None when the connection ends
        here: a cancel request was dropped, or a side closed during the negotiation.
        """
        assert self.client is not None
        assert self.server is not None
        if head[0] == _TLS_RECORD_HANDSHAKE:
            self.opaque = True
            return head
        while _request_code(head) in _ENCRYPTION_REQUEST_CODES:
            request, head = head[:8], head[8:]
            await self.forward(request, to_server=True)
            answer = await self.server.receive_some(1)  # the server sends nothing more yet
            if not answer:
                return None
            await self.forward(answer, to_server=False)
            if answer != _DECLINED:  # "S" or "G": encrypted from here on (else an error)
                self.opaque = True
                return head
            head = await _receive_head(self.client, head)
            if not head or await self.proxy._drops(self.client, head):
                return None
        return head

    async def forward(self, data: bytes | bytearray, *, to_server: bool) -> None:
        if to_server and self.ready and data and not self.opaque:
            mode = self.proxy.mode
            if mode == "reset_mid_query":
                for stream in (self.client, self.server):
                    if isinstance(stream, trio.SocketStream):
                        _reset(stream)
                assert self.scope is not None
                self.scope.cancel()
                return
            if mode == "blackhole_mid_query":
                self.query_sent = True
        while self._holds(to_server):
            await self.proxy._changed.wait()
        if self.proxy.mode == "delay":
            await trio.sleep(self.proxy.delay_s)
        if not to_server and not self.opaque and _READY_FOR_QUERY in data:
            self.ready = True
        target = self.server if to_server else self.client
        assert target is not None
        await target.send_all(data)

    async def pump(self, src: trio.abc.Stream, dst: trio.abc.Stream, to_server: bool) -> None:
        try:
            while True:
                data = await src.receive_some(65536)
                if not data:
                    break
                await self.forward(data, to_server=to_server)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        assert self.scope is not None
        self.scope.cancel()


def _request_code(head: bytes | bytearray) -> int | None:
    """The code of an untyped opening message (cancel, encryption or startup), if complete."""
    if len(head) < 8:
        return None
    _length, code = struct.unpack_from("!ii", head)
    return int(code)


async def _receive_head(
    stream: trio.abc.Stream, head: bytearray | None = None, size: int = 8
) -> bytearray:
    """Read until ``head`` holds ``size`` bytes (by default a length and a code), or EOF."""
    head = bytearray() if head is None else head
    try:
        while len(head) < size:
            data = await stream.receive_some(65536)
            if not data:
                break
            head += data
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    return head


def _reset(stream: trio.SocketStream) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed host or a firewall would."""
    with contextlib.suppress(OSError):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


async def serve_silent_listener(
    *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Accept TCP connections and never answer (a server that hangs before the handshake)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def hang(stream: trio.SocketStream) -> None:
        async with stream:
            await trio.sleep_forever()

    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(hang, listeners)


def closed_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
