"""The search's new-query limit (``pages.new_queries_per_minute``) holds across workers: the
real service on 2 workers and one Redis, its search on the fake API (served by this test, so
every upstream call is counted), 4 clients of one address at once, each new query on a
connection of its own (the workers share the listening socket, so both answer; which one
did is read from the workers' open connections). Then Redis is unreachable: each worker
counts on its own and says so once."""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from service.platform.redis_rate_limits import RETRY_AFTER_S
from service.search.fake_api import FakeApiState
from tests.support.search_fixtures import BROWSER, running_fake_api, write_ini
from tests.support.service_runner import (
    ServiceRunner,
    two_worker_service,
    worker_processes,
    worker_serving,
)

pytestmark = pytest.mark.integration

LIMIT = 5
CLIENTS = 4
QUERIES_PER_CLIENT = 6
TRIALS = 3
SITE = "stackoverflow"
REFUSED = re.compile(r"Too many new searches from your address; try again in (\d+) s")
REDIS_DOWN = "rate limits: Redis failed"


@dataclass(frozen=True)
class Answer:
    text: str
    status: int
    #: The pid of the worker that answered the post.
    worker: int | None
    body: str


@asynccontextmanager
async def search_service(
    dsn: str, tmp: Path, redis_url: str
) -> AsyncIterator[tuple[ServiceRunner, FakeApiState]]:
    """The service (2 workers, ``redis_url``) with its search on a fake API allowing LIMIT
    new queries a minute per client; the runner and the fake's state."""
    async with running_fake_api() as (api_url, fake):
        ini = write_ini(tmp / "search.ini", api_url, pages={"new_queries_per_minute": LIMIT})
        service = two_worker_service(
            dsn, tmp / "images", "search-limit", REDIS_URL=redis_url, SEARCH_CONFIG=str(ini)
        )
        # Started in a thread: the fake answers meanwhile.
        runner = await trio.to_thread.run_sync(service.__enter__)
        try:
            yield runner, fake
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(service.__exit__, None, None, None)


async def new_query(url: str, address: str, text: str, workers: list[Any]) -> Answer:
    """Post ``text`` from ``address`` on a new connection; if admitted, view its results
    (the view that asks the API)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(
        base_url=url, transport=transport, headers=BROWSER, timeout=60
    ) as client:
        response = await client.post("/search", data={"q": text, "site": SITE})
        client_addr = response.extensions["network_stream"].get_extra_info("client_addr")
        worker = await trio.to_thread.run_sync(worker_serving, workers, client_addr)
        if response.status_code == 303:
            results = await client.get(response.headers["Location"])
            assert results.status_code == 200, results.text
    return Answer(text, response.status_code, worker, response.text)


async def new_queries_at_once(runner: ServiceRunner, address: str, label: str) -> list[Answer]:
    """CLIENTS clients of ``address`` at once, each posting QUERIES_PER_CLIENT new queries."""
    workers = worker_processes(runner)
    answers: list[Answer] = []

    async def one_client(n: int) -> None:
        for i in range(QUERIES_PER_CLIENT):
            answers.append(
                await new_query(runner.url, address, f"{label} client{n} query{i}", workers)
            )

    async with trio.open_nursery() as nursery:
        for n in range(CLIENTS):
            nursery.start_soon(one_client, n)
    return answers


def check_refusals(answers: list[Answer]) -> None:
    for answer in answers:
        if answer.status == 429:
            match = REFUSED.search(answer.body)
            assert match, answer.body
            assert 1 <= int(match.group(1)) <= 60
            assert answer.text in answer.body  # what was typed stays in the form


async def test_a_clients_new_queries_are_limited_across_workers(
    empty_db: str, tmp_path: Path, redis_url: str
) -> None:
    """Per trial (3), a client address of its own: 4 clients post 6 new queries each (24),
    every post on a new connection. Exactly LIMIT (5) are stored (303), whichever worker
    answered, the other 19 get 429 with the wait, both workers answered, and the fake API
    was asked once for each admitted query and never for a refused one."""
    trials = []
    async with search_service(empty_db, tmp_path, redis_url) as (runner, fake):
        workers = {worker.pid for worker in worker_processes(runner)}
        for trial in range(TRIALS):
            answers = await new_queries_at_once(runner, f"127.0.{60 + trial}.1", f"trial{trial}")
            check_refusals(answers)
            trials.append(answers)
    total = CLIENTS * QUERIES_PER_CLIENT
    admitted = [[a.text for a in answers if a.status == 303] for answers in trials]
    figures = [
        (
            Counter(a.status for a in answers),
            Counter(a.worker for a in answers if a.status == 303),
            Counter(a.worker for a in answers),
        )
        for answers in trials
    ]
    assert [len(texts) for texts in admitted] == [LIMIT] * TRIALS, figures
    for answers in trials:
        assert Counter(a.status for a in answers) == Counter({303: LIMIT, 429: total - LIMIT})
        assert {a.worker for a in answers} == workers, figures  # both workers answered
    asked = [(SITE, text) for texts in admitted for text in texts]
    assert fake.calls_by_query == Counter(asked)
    assert fake.calls == LIMIT * TRIALS


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 bound but never listening: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_with_redis_unreachable_each_worker_limits_new_queries_and_says_so_once(
    empty_db: str, tmp_path: Path, closed_port: int
) -> None:
    """REDIS_URL on a closed port. Twice (the second time after Redis is due to be tried
    again), from an address of its own, 4 clients post 6 new queries each (24). Each worker
    stores exactly min(LIMIT, answered) of the posts it answered (at most 5), refuses the
    rest with 429, no 5xx; the fake API was asked once per stored query; each worker logged
    the fallback exactly once."""
    async with search_service(empty_db, tmp_path, f"redis://127.0.0.1:{closed_port}") as (
        runner,
        fake,
    ):
        workers = {worker.pid for worker in worker_processes(runner)}
        waves = [await new_queries_at_once(runner, "127.0.70.1", "down")]
        await trio.sleep(RETRY_AFTER_S + 0.5)  # each worker tries Redis again, and fails
        waves.append(await new_queries_at_once(runner, "127.0.70.2", "still down"))
    stored = 0
    for answers in waves:
        check_refusals(answers)
        assert {a.status for a in answers} <= {303, 429}, Counter(a.status for a in answers)
        answered = Counter(a.worker for a in answers)
        admitted = Counter(a.worker for a in answers if a.status == 303)
        assert set(answered) == workers, answered  # both workers answered
        assert admitted == {pid: min(LIMIT, count) for pid, count in answered.items()}, (
            admitted,
            answered,
        )
        stored += sum(admitted.values())
    assert fake.calls == stored
    log = runner.output.decode("utf-8", "replace")
    down = [line for line in log.splitlines() if REDIS_DOWN in line]
    pids = Counter(int(m.group(1)) for line in down if (m := re.search(r"\[(\d+)\]", line)))
    assert pids == Counter(dict.fromkeys(workers, 1)), down  # once per worker
