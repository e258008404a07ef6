"""A fault-injecting TCP proxy in front of PostgreSQL, on trio, for the tests.

Listens on 127.0.0.1 port 0 and forwards to a TCP address or a Unix socket.
Its ``mode`` (see ``MODES``) can be switched at any time: ``blackhole()`` makes the
network go silent (bytes in either direction are held for ever and no connection is
closed, as when a cable is pulled mid-query); other modes delay, reset, refuse, or
drop PostgreSQL's out-of-band cancel requests.
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

_CANCEL_REQUEST = b"\x00\x00\x00\x10\x04\xd2\x16\x2e"
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

    async def _proxy(self, client: trio.SocketStream, conn: _Connection) -> None:
        async with client:
            first = await client.receive_some(65536)
            if not first:
                return
            if first.startswith(_CANCEL_REQUEST) and self.mode == "drop_cancel":
                self.cancels_dropped += 1
                return
            try:
                server = await self.upstream.connect()
            except OSError:
                return
            async with server, trio.open_nursery() as nursery:
                conn.scope = nursery.cancel_scope
                conn.client, conn.server = client, server
                await conn.forward(first, to_server=True)
                nursery.start_soon(conn.pump, client, server, True)
                nursery.start_soon(conn.pump, server, client, False)


@dataclass
class _Connection:
    proxy: FaultProxy
    frozen_silent: bool
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

    async def forward(self, data: bytes | bytearray, *, to_server: bool) -> None:
        if to_server and self.ready and data:
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
        if not to_server and _READY_FOR_QUERY in data:
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
