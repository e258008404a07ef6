"""The log-in and registration limits hold across workers: the real service with 2 workers
on one Redis (an embedded valkey of this module), every attempt on a connection of its own
(the workers share the listening socket, so attempts land on both), from a client address
of its own where the per-client limit is not what is tested (127.0.0.0/8 is all local).
Then Redis goes away: each worker counts on its own and says so once."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import trio

from service.platform.embedded_redis import embedded_redis
from tests.support.service_runner import ServiceRunner

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
REGISTER_LIMIT = 5
TRIALS = 10
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def service_env(dsn: str, tmp: Path, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "limits-across-workers-test-key-" + "x" * 32,
        "DATA_DIR": str(tmp),
        "SEED_USERS": "0",
        "ADMIN_PASSWORD": "admin password for the test",
        "REGISTER_RATE_LIMIT": f"{REGISTER_LIMIT}/minute",
    }


@pytest.fixture(scope="module")
def service(empty_db_for_module: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("limits")
    with embedded_redis(tmp / "valkey") as redis_url:
        runner = ServiceRunner(service_env(empty_db_for_module, tmp, redis_url), workers=2)
        try:
            yield runner.wait_started()
        finally:
            runner.stop()


async def post_from(address: str, url: str, path: str, body: dict[str, str]) -> httpx.Response:
    """One request on a new connection from ``address`` (a 127.x.y.z of its own)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as client:
        return await client.post(path, json=body)


async def at_once(count: int, attempt: object) -> list[httpx.Response]:
    """``count`` attempts (``attempt(n)``), all started together."""
    answers: list[httpx.Response] = []
    go = trio.Event()

    async def one(n: int) -> None:
        await go.wait()
        answers.append(await attempt(n))  # type: ignore[operator]

    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(one, n)
        await trio.sleep(0.1)
        go.set()
    return answers


async def test_six_failed_log_ins_of_one_email_on_two_workers_the_sixth_is_refused(
    service: str,
) -> None:
    """Per trial (10), a new email; 6 wrong log-ins at once, each from its own address and
    connection: 5 answer 401, one 429 (the limit is 5 per email)."""
    counts = []
    for trial in range(TRIALS):
        email = f"guess-{trial}-{uuid.uuid4().hex[:8]}@example.com"
        answers = await at_once(
            6,
            lambda n, trial=trial, email=email: post_from(
                f"127.0.{10 + trial}.{10 + n}",
                service,
                "/api/login/",
                {"email": email, "password": "wrong password"},
            ),
        )
        counts.append(Counter(answer.status_code for answer in answers))
    assert counts == [Counter({401: 5, 429: 1})] * TRIALS, counts
    refused = await post_from(
        "127.0.9.9", service, "/api/login/", {"email": email, "password": "wrong password"}
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 300


async def test_a_clients_twenty_first_failed_log_in_is_refused_on_any_worker(
    service: str,
) -> None:
    """24 wrong log-ins from one address, each for another email, 4 at a time: 20 answer
    401, the rest 429 (the limit is 20 per client)."""
    statuses: Counter[int] = Counter()
    for wave in range(6):
        answers = await at_once(
            4,
            lambda n, wave=wave: post_from(
                "127.0.20.1",
                service,
                "/api/login/",
                {"email": f"c{wave}-{n}-{uuid.uuid4().hex[:6]}@example.com", "password": "no"},
            ),
        )
        statuses.update(answer.status_code for answer in answers)
    assert statuses == Counter({401: 20, 429: 4})


async def test_registrations_are_limited_per_client_across_workers(service: str) -> None:
    """8 registrations from one address, 4 at a time, over the API, then one on the web
    form: 5 (REGISTER_RATE_LIMIT=5/minute) get 201, the others 429 with Retry-After."""
    address = "127.0.30.1"
    answers = []
    for wave in range(2):
        answers += await at_once(
            4,
            lambda n, wave=wave: post_from(
                address,
                service,
                "/api/register/",
                {
                    "email": f"new-{wave}-{n}-{uuid.uuid4().hex[:6]}@example.com",
                    "password": PASSWORD,
                },
            ),
        )
    assert Counter(answer.status_code for answer in answers) == Counter({201: 5, 429: 3})
    retry_after = [int(a.headers["Retry-After"]) for a in answers if a.status_code == 429]
    assert all(1 <= wait <= 60 for wait in retry_after)
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=service, transport=transport, timeout=60) as client:
        page = await client.get("/register", headers=BROWSER)
        match = CSRF.search(page.text)
        assert match
        form = {"csrf_token": match.group(1), "email": "web@example.com", "password": PASSWORD}
        web = await client.post("/register", data=form, headers=BROWSER)
    assert web.status_code == 429
    assert "Retry-After" in web.headers
    other = await post_from(
        "127.0.30.2", service, "/api/register/", {"email": "else@example.com", "password": PASSWORD}
    )
    assert other.status_code == 201  # another client is not held back


async def test_with_redis_gone_each_worker_counts_alone_and_says_so_once(
    empty_db_for_module: str, tmp_path: Path
) -> None:
    """The valkey stops under a running service: 20 log-ins later, the limits still hold
    per worker (at most 5 per email per worker pass), and each worker logged one line."""
    with ExitStack() as stack:
        redis_url = stack.enter_context(embedded_redis(tmp_path / "valkey"))
        runner = ServiceRunner(service_env(empty_db_for_module, tmp_path, redis_url), workers=2)
        try:
            url = await trio.to_thread.run_sync(runner.wait_started)
            stack.close()  # Redis stops; the service runs on
            email = f"down-{uuid.uuid4().hex[:8]}@example.com"
            answers = []
            for wave in range(5):
                answers += await at_once(
                    4,
                    lambda n, wave=wave: post_from(
                        f"127.0.40.{10 + 4 * wave + n}",
                        url,
                        "/api/login/",
                        {"email": email, "password": "wrong password"},
                    ),
                )
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(runner.stop)
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses[500] == 0
    assert 5 <= statuses[401] <= 10, statuses  # per worker: 5 each at most
    assert statuses[429] >= 10
    log = runner.output.decode("utf-8", "replace")
    down_lines = [line for line in log.splitlines() if "rate limits: Redis failed" in line]
    assert 1 <= len(down_lines) <= 2, down_lines  # one per worker that served
    assert len({re.search(r"\[(\d+)\]", line).group(1) for line in down_lines}) == len(  # type: ignore[union-attr]
        down_lines
    )
