"""A keep-alive connection never wedges, on the real service (hypercorn, trio worker, 2
workers), spoken to over raw sockets: an answer given before the request body was read
(405, 401, 404, 413, ``GET /health`` with a body) leaves the connection usable or closes it
cleanly; a 16 MB upload gets its 413 answer, not a reset."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import trio

from tests.support.service_runner import ServiceRunner
from tests.support.task_images import b64, image_bytes

pytestmark = pytest.mark.integration

#: Every read on a raw socket is bounded: a wedged connection fails the test, never hangs it.
READ_TIMEOUT_S = 5.0
#: The second request on the connection, sent right behind the first one's late body.
HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
UPLOAD_BYTES = 16 * 1024 * 1024
UPLOADS = 20


@pytest.fixture(scope="module")
def service(empty_db_for_module: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "DATABASE_URL": empty_db_for_module,
        "SECRET_KEY": "connection-test-key-" + "x" * 32,
        "IMAGES_DIR": str(tmp_path_factory.mktemp("images")),
        "SEED_USERS": "0",
        "ADMIN_PASSWORD": "admin password for the test",
    }
    runner = ServiceRunner(env, workers=2)
    try:
        yield runner.wait_started()
    finally:
        runner.stop()


@dataclass
class Credentials:
    """A user's token pair; access tokens live 30 s, so each use refreshes the pair first
    (on a connection of its own)."""

    url: str
    refresh_token: str

    async def headers(self) -> dict[str, str]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            refresh = {"refresh_token": self.refresh_token}
            pair = await client.post("/api/refresh/", json=refresh)
        assert pair.status_code == 200, pair.text
        self.refresh_token = pair.json()["refresh_token"]
        access = pair.json()["access_token"]
        return {"Authorization": f"Bearer {access}", "Content-Type": "application/json"}


@pytest.fixture
async def uploader(service: str) -> Credentials:
    """A user of the service (registered once per module), logged in."""
    credentials = {"email": "uploader@example.com", "password": "correct horse"}
    async with httpx.AsyncClient(base_url=service) as client:
        registered = await client.post("/api/register/", json=credentials)
        assert registered.status_code in (201, 409), registered.text
        login = await client.post("/api/login/", json=credentials)
        assert login.status_code == 200, login.text
        return Credentials(service, login.json()["refresh_token"])


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Conversation:
    """What came back on one connection, and how it ended: ``eof`` (closed cleanly),
    ``reset``, or ``open`` (nothing more within the read timeout); ``send_cut`` if sending
    the body failed (the server closed with bytes of it unread, which resets the
    connection)."""

    answers: list[Answer] = field(default_factory=list)
    ending: str = "open"
    send_cut: bool = False


async def read_answers(stream: trio.SocketStream, wanted: int) -> Conversation:
    """Parse responses (each framed by Content-Length) until ``wanted`` came, the peer
    closed, or a read saw nothing for ``READ_TIMEOUT_S``."""
    seen = Conversation()
    buffer = bytearray()

    async def more() -> bool:
        with trio.move_on_after(READ_TIMEOUT_S):
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                seen.ending = "reset"
                return False
            if not chunk:
                seen.ending = "eof"
                return False
            buffer.extend(chunk)
            return True
        return False

    while len(seen.answers) < wanted:
        while b"\r\n\r\n" not in buffer:
            if not await more():
                return seen
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            if not await more():
                return seen
            rest = bytes(buffer).partition(b"\r\n\r\n")[2]
        seen.answers.append(Answer(int(status_line.split()[1]), headers, rest[:length]))
        del buffer[: len(head) + 4 + length]
    return seen


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def talk(url: str, head: bytes, body: bytes, *, body_delay_s: float = 0.1) -> Conversation:
    """Send ``head``, then (``body_delay_s`` later, as a slow client would) ``body`` with a
    second request right behind it, while reading what comes back."""
    stream = await trio.open_tcp_stream("127.0.0.1", port_of(url))
    send_cut = False

    async def send_the_rest() -> None:
        nonlocal send_cut
        await trio.sleep(body_delay_s)
        try:
            await stream.send_all(body + HEALTH)
        except trio.BrokenResourceError:
            send_cut = True  # what the server answered is still to be read

    async with stream, trio.open_nursery() as nursery:
        await stream.send_all(head)
        nursery.start_soon(send_the_rest)
        seen = await read_answers(stream, 2)
        nursery.cancel_scope.cancel()
    seen.send_cut = send_cut
    return seen


def request_head(method: str, path: str, length: int, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


JSON = "Content-Type: application/json"

#: Answers given before the body is read: (what, request head, body, expected status).
EARLY_ANSWERS = [
    ("405", "POST", "/health", 405),
    ("401", "POST", "/api/tasks/", 401),
    ("404", "POST", "/no/such/path", 404),
    ("health-with-a-body", "GET", "/health", 200),
]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [case[1:] for case in EARLY_ANSWERS],
    ids=[case[0] for case in EARLY_ANSWERS],
)
async def test_an_answer_before_the_body_leaves_the_connection_usable(
    service: str, method: str, path: str, status: int
) -> None:
    seen = await talk(service, request_head(method, path, 2, JSON), b"{}")
    assert [answer.status for answer in seen.answers] == [status, 200], seen.ending
    assert seen.answers[1].body.startswith(b"{")


async def test_a_declared_body_over_the_limit_is_413_then_a_clean_close(service: str) -> None:
    # 16 MiB on a route that takes 64 KiB, sent at once: too much to read for the next
    # request's sake, but closing with it unread would reset the connection mid-upload.
    size = UPLOAD_BYTES
    head = request_head("POST", "/api/register/", size, JSON)
    seen = await talk(service, head, b"x" * size, body_delay_s=0)
    assert [answer.status for answer in seen.answers] == [413]
    assert seen.answers[0].headers.get("connection") == "close"
    assert seen.ending == "eof"
    assert not seen.send_cut  # the server read the body before it closed


async def test_a_chunked_body_answered_early_ends_in_two_answers_or_a_clean_close(
    service: str,
) -> None:
    head = b"POST /no/such/path HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    seen = await talk(service, head, b"2\r\n{}\r\n0\r\n\r\n")
    statuses = [answer.status for answer in seen.answers]
    assert statuses == [404, 200] or (statuses == [404] and seen.ending == "eof"), (
        statuses,
        seen.ending,
    )


async def test_a_connection_close_request_is_answered_then_closed(service: str) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port_of(service))
    async with stream:
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        seen = await read_answers(stream, 2)
    assert [answer.status for answer in seen.answers] == [200]
    assert seen.ending == "eof"


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    service: str,
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port_of(service))
    async with stream:
        await stream.send_all(HEALTH)
        first = await read_answers(stream, 1)
        assert [answer.status for answer in first.answers] == [200]
        started = trio.current_time()
        with trio.fail_after(15):  # hypercorn's keep_alive_timeout is 5 s
            assert await stream.receive_some(65536) == b""
        assert trio.current_time() - started > 4  # kept alive until then


async def upload_outcomes(url: str, who: Credentials, content: bytes, times: int) -> Counter[str]:
    """POST ``content`` as a task ``times`` times on one httpx client; each outcome:
    ``413 json`` (the answer, with its JSON body) or the status or error seen instead."""
    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for _ in range(times):
            headers = await who.headers()
            try:
                response = await client.post("/api/tasks/", content=content, headers=headers)
            except httpx.HTTPError as exc:
                outcomes[type(exc).__name__] += 1
                continue
            if response.status_code == 413:
                error = response.json()["error"]
                outcomes["413 json" if error == "request_entity_too_large" else error] += 1
            else:
                outcomes[str(response.status_code)] += 1
    return outcomes


async def test_a_16_mb_upload_always_gets_its_413_answer(
    service: str, uploader: Credentials
) -> None:
    content = b'{"image": "' + b"A" * (UPLOAD_BYTES - 13) + b'"}'
    assert len(content) == UPLOAD_BYTES
    outcomes = await upload_outcomes(service, uploader, content, UPLOADS)
    assert outcomes == {"413 json": UPLOADS}, dict(outcomes)


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_streamed_uploads_are_still_read_whole_and_refused_whole(
    service: str, uploader: Credentials
) -> None:
    image = b'{"image": "' + b64(image_bytes("PNG")).encode() + b'", "meta": "streamed"}'
    huge = b'{"image": "' + b"A" * (UPLOAD_BYTES - 13) + b'"}'
    async with httpx.AsyncClient(base_url=service, timeout=10) as client:
        for _ in range(3):  # chunked (no Content-Length), on one connection
            headers = await uploader.headers()
            created = await client.post("/api/tasks/", content=chunks(image), headers=headers)
            assert created.status_code == 201, created.text
            assert created.json()["meta"] == "streamed"
            refused = await client.post("/api/tasks/", content=chunks(huge), headers=headers)
            assert refused.status_code == 413
            assert refused.json()["error"] == "request_entity_too_large"
