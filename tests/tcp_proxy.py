"""A fault-injecting TCP proxy in front of PostgreSQL, on trio, for the tests.

Listens on 127.0.0.1 port 0 and forwards to a TCP address or a Unix socket.
``blackhole()`` makes the network go silent: bytes in either direction are held
for ever and no connection is closed, as when a cable is pulled mid-query.
"""

from __future__ import annotations

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


@dataclass
class FaultProxy:
    """A proxy whose network can be made to go silent."""

    upstream: Upstream
    port: int = 0
    connections: int = 0
    _silent: bool = False
    _resume: trio.Event = field(default_factory=trio.Event)

    def dsn(self) -> str:
        auth = self.upstream.user + (f":{self.upstream.password}" if self.upstream.password else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{self.upstream.database}"

    def blackhole(self) -> None:
        """From now on, hold every byte in both directions."""
        self._silent = True
        self._resume = trio.Event()

    def heal(self) -> None:
        """Forward again."""
        self._silent = False
        self._resume.set()

    async def serve(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._handle, listeners, task_status=task_status)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        try:
            server = await self.upstream.connect()
        except OSError:
            await client.aclose()
            return
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, server, nursery.cancel_scope)
            nursery.start_soon(self._pump, server, client, nursery.cancel_scope)

    async def _pump(
        self, src: trio.abc.Stream, dst: trio.abc.Stream, scope: trio.CancelScope
    ) -> None:
        try:
            while True:
                data = await src.receive_some(65536)
                while self._silent:
                    await self._resume.wait()
                if not data:
                    break
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()


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
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
