"""Remote calls: deadlines, retries with backoff on 5xx and timeouts, 4xx not retried; the
HTTP remote against a fake server that fails, hangs or is slow."""

from __future__ import annotations

import httpx
import pytest
import trio

from service.images.remote import (
    CircuitBreaker,
    FakeRemote,
    HttpRemote,
    RemoteFailedError,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)
from tests.support.image_services import ImageServices

POLICY = RetryPolicy(attempts=3, deadline_s=2.0, backoff_s=0.5)


async def test_a_failing_call_is_retried_until_it_works(autojump_clock: trio.abc.Clock) -> None:
    remote = FakeRemote(failures=2)
    retries: list[float] = []
    answer = await call_with_retries(
        remote,
        "a.png",
        b"x",
        "image/png",
        POLICY,
        on_retry=lambda: retries.append(trio.current_time()),
    )
    assert answer == '{"ok": true}'
    assert remote.calls == {"a.png": 3}
    assert len(retries) == 2


async def test_a_hanging_call_times_out_and_the_image_fails_after_the_attempts(
    autojump_clock: trio.abc.Clock,
) -> None:
    remote = FakeRemote(failures=10, hang=True)
    start = trio.current_time()
    with pytest.raises(RemoteFailedError, match="no answer within 2 s"):
        await call_with_retries(remote, "a.png", b"x", "image/png", POLICY)
    assert remote.calls == {"a.png": 3}
    # Three deadlines of 2 s plus two backoffs of 0.25-0.5 s then 0.5-1 s.
    assert 6.75 <= trio.current_time() - start <= 7.5


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_s=0.2, max_backoff_s=1.0)
    assert policy.delay_s(1, rand=lambda: 1.0) == pytest.approx(0.2)
    assert policy.delay_s(2, rand=lambda: 1.0) == pytest.approx(0.4)
    assert policy.delay_s(2, rand=lambda: 0.0) == pytest.approx(0.2)
    assert policy.delay_s(10, rand=lambda: 1.0) == pytest.approx(1.0)


async def test_http_remote_retries_503_answers() -> None:
    services = ImageServices(fail_first=2)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/remote"))
        policy = RetryPolicy(attempts=3, deadline_s=5.0, backoff_s=0.01)
        answer = await call_with_retries(remote, "dir/é.png", b"12345", "image/png", policy)
        nursery.cancel_scope.cancel()
    assert answer == '{"bytes":5}'
    assert services.calls == {"dir/é.png": 3}


async def test_http_remote_gives_up_on_a_server_that_keeps_failing() -> None:
    services = ImageServices(fail_first=10)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/remote"))
        policy = RetryPolicy(attempts=2, deadline_s=5.0, backoff_s=0.01)
        with pytest.raises(RemoteFailedError, match="HTTP 503"):
            await call_with_retries(remote, "a.png", b"x", "image/png", policy)
        nursery.cancel_scope.cancel()
    assert services.calls == {"a.png": 2}


async def test_http_remote_abandons_a_hanging_call_at_its_deadline_and_retries() -> None:
    services = ImageServices(hang_first=1)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/remote"))
        policy = RetryPolicy(attempts=2, deadline_s=0.3, backoff_s=0.01)
        start = trio.current_time()
        answer = await call_with_retries(remote, "a.png", b"xy", "image/png", policy)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert answer == '{"bytes":2}'
    assert services.calls == {"a.png": 2}
    assert 0.3 <= elapsed < 3.0


async def test_a_slow_answer_within_the_deadline_is_kept() -> None:
    services = ImageServices(remote_delay_s=0.2)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/remote"))
        policy = RetryPolicy(attempts=1, deadline_s=5.0)
        assert await call_with_retries(remote, "a.png", b"x", "image/png", policy) == '{"bytes":1}'
        nursery.cancel_scope.cancel()
    assert services.calls == {"a.png": 1}


async def test_a_4xx_answer_is_not_retried() -> None:
    services = ImageServices()
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/reject"))
        with pytest.raises(RemoteFailedError, match="HTTP 400"):
            await call_with_retries(remote, "a.png", b"x", "image/png", POLICY)
        nursery.cancel_scope.cancel()
    assert services.calls == {"a.png": 1}


async def test_a_refused_connection_is_retried_then_fails() -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once it is closed
    async with httpx.AsyncClient(timeout=None) as client:
        remote = HttpRemote(client, f"http://127.0.0.1:{port}/remote")
        policy = RetryPolicy(attempts=2, deadline_s=2.0, backoff_s=0.01)
        with pytest.raises(RemoteFailedError, match="ConnectError"):
            await call_with_retries(remote, "a.png", b"x", "image/png", policy)


async def test_a_2xx_answer_with_a_body_that_cannot_be_decoded_fails_the_image() -> None:
    services = ImageServices()
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/bad-gzip"))
        with pytest.raises(RemoteFailedError, match="DecodingError"):
            await call_with_retries(remote, "a.png", b"x", "image/png", POLICY)
        nursery.cancel_scope.cancel()
    assert services.calls == {"a.png": 1}  # not worth retrying


async def test_a_redirect_is_not_an_answer() -> None:
    services = ImageServices()
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/moved"))
        with pytest.raises(RemoteFailedError, match="HTTP 302"):
            await call_with_retries(remote, "a.png", b"x", "image/png", POLICY)
        nursery.cancel_scope.cancel()
    assert services.calls == {"a.png": 1}


async def test_a_429_is_retried_after_the_time_the_server_asks_for() -> None:
    services = ImageServices(busy_first=1)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=None) as client:
        await nursery.start(services.serve)
        remote = HttpRemote(client, services.url("/busy"))
        policy = RetryPolicy(attempts=3, deadline_s=5.0, backoff_s=0.01)
        start = trio.current_time()
        answer = await call_with_retries(remote, "a.png", b"xy", "image/png", policy)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert answer == '{"bytes":2}'
    assert services.calls == {"a.png": 2}
    assert elapsed >= 1.0  # Retry-After: 1, not the 0.01 s backoff


async def test_an_outage_pauses_the_calls_instead_of_failing_every_image(
    autojump_clock: trio.abc.Clock,
) -> None:
    remote = FakeRemote(failures=200)  # down for 200 attempts, then fine
    breaker = CircuitBreaker(threshold=5, probe_interval_s=1.0, max_probe_interval_s=10.0)
    answers: list[str] = []

    async def one(name: str) -> None:
        answers.append(
            await call_with_retries(remote, name, b"x", "image/png", POLICY, breaker=breaker)
        )

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for number in range(8):
            nursery.start_soon(one, f"{number}.png")
    assert answers == ['{"ok": true}'] * 8  # POLICY alone gives up after 3 attempts each
    assert breaker.openings == 1
    assert not breaker.is_open
    # While open, one probe at a time at most 10 s apart: about 200 x 10 s.
    assert 1500 < trio.current_time() - start < 2200


def test_retry_after_is_read_in_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after(None) is None
