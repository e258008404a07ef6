"""``take`` hands every task out exactly once, on the real service with 2 workers: 10 users
create 5 tasks each, then 200 ``take`` requests (20 per user) run at once."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from tests.support.service_runner import two_workers
from tests.support.task_images import image_bytes

pytestmark = pytest.mark.integration

USERS, TASKS_EACH, TAKES_EACH = 10, 5, 20


@pytest.fixture(scope="module")
def service_url(
    empty_db_for_module: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    # 10 users register from one address at once: past the default 10/minute.
    with two_workers(
        empty_db_for_module,
        tmp_path_factory.mktemp("images"),
        "exactly-once",
        REGISTER_RATE_LIMIT="1000/minute",
    ) as url:
        yield url


async def make_user(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    credentials = {"email": f"taker{n}@example.com", "password": "correct horse"}
    registered = await client.post("/api/register/", json=credentials)
    assert registered.status_code == 201, registered.text
    tokens = (await client.post("/api/login/", json=credentials)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    ids = []
    for k in range(TASKS_EACH):
        image = base64.b64encode(image_bytes("PNG", color=(n * 20, k * 40, 0))).decode()
        created = await client.post(
            "/api/tasks/", json={"image": image, "meta": f"{n}/{k}"}, headers=headers
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return {"id": registered.json()["id"], "headers": headers, "tasks": ids}


async def test_200_concurrent_takes_hand_out_each_task_exactly_once(service_url: str) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=service_url, timeout=60, limits=limits) as client:
        users: list[dict[str, Any]] = [{}] * USERS

        async def register(n: int) -> None:
            users[n] = await make_user(client, n)

        async with trio.open_nursery() as nursery:
            for n in range(USERS):
                nursery.start_soon(register, n)

        answers: list[tuple[int, int, int | None]] = []  # (user, status, task id)
        start = trio.Event()

        async def take(n: int) -> None:
            await start.wait()
            response = await client.post("/api/tasks/take/", headers=users[n]["headers"])
            task = response.json()["id"] if response.status_code == 200 else None
            answers.append((n, response.status_code, task))

        async with trio.open_nursery() as nursery:
            for n in range(USERS):
                for _ in range(TAKES_EACH):
                    nursery.start_soon(take, n)
            await trio.sleep(0.2)
            start.set()

    statuses = Counter(status for _, status, _ in answers)
    assert statuses == {200: USERS * TASKS_EACH, 204: USERS * (TAKES_EACH - TASKS_EACH)}
    handed = Counter(task for _, _, task in answers if task is not None)
    assert all(count == 1 for count in handed.values())  # never twice
    for n, user in enumerate(users):
        mine = sorted(task for who, _, task in answers if who == n and task is not None)
        assert mine == sorted(user["tasks"])  # every task, to its own user
