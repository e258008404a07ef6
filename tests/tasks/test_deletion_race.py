"""Uploads racing their user's deletion, on the real service with 2 workers: every upload
is answered 201 (before the deletion) or 401 (after it), never 500, and when all is done the
user has no task row and no image folder left.

Each trial: a user with 10 images (so removing their folder takes a while), then 6 uploaders
sending images one after another while a seventh actor deletes the account."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.support.pg_admin import admin
from tests.support.service_runner import two_workers
from tests.support.task_images import b64, image_bytes

pytestmark = pytest.mark.integration

TRIALS, UPLOADERS, IMAGES_BEFORE, UPLOADS_EACH = 20, 6, 10, 12


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="module")
def service_url(empty_db_for_module: str, images_dir: Path) -> Iterator[str]:
    with two_workers(
        empty_db_for_module, images_dir, "deletion-race", REGISTER_RATE_LIMIT="100000/minute"
    ) as url:
        yield url


async def new_user(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    credentials = {"email": f"racer{n}@example.com", "password": "correct horse"}
    registered = await client.post("/api/register/", json=credentials)
    assert registered.status_code == 201, registered.text
    tokens = (await client.post("/api/login/", json=credentials)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for k in range(IMAGES_BEFORE):
        created = await client.post(
            "/api/tasks/", json={"image": b64(image_bytes(color=(n, k, 0)))}, headers=headers
        )
        assert created.status_code == 201, created.text
    return {"id": registered.json()["id"], "headers": headers}


async def test_uploads_racing_the_users_deletion_are_201_or_401_and_leave_nothing(
    service_url: str, images_dir: Path, empty_db_for_module: str
) -> None:
    statuses: Counter[int] = Counter()
    left_behind: list[tuple[int, int, bool]] = []  # (trial, task rows, folder exists)
    deletions: Counter[int] = Counter()
    failed_trials: set[int] = set()
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=service_url, timeout=60, limits=limits) as client:
        for trial in range(TRIALS):
            user = await new_user(client, trial)
            start = trio.Event()

            async def upload(
                actor: int,
                user: dict[str, Any] = user,
                start: trio.Event = start,
                trial: int = trial,
            ) -> None:
                await start.wait()
                for k in range(UPLOADS_EACH):
                    image = b64(image_bytes(color=(actor, k, 9)))
                    answer = await client.post(
                        "/api/tasks/", json={"image": image}, headers=user["headers"]
                    )
                    statuses[answer.status_code] += 1
                    if answer.status_code not in (201, 401):
                        failed_trials.add(trial)
                    if answer.status_code != 201:
                        return

            async def delete(
                user: dict[str, Any] = user, start: trio.Event = start, trial: int = trial
            ) -> None:
                await start.wait()
                await trio.sleep(0.01 * (trial % 5))  # vary where the deletion lands
                answer = await client.delete(f"/api/users/{user['id']}/", headers=user["headers"])
                deletions[answer.status_code] += 1

            async with trio.open_nursery() as nursery:
                for actor in range(UPLOADERS):
                    nursery.start_soon(upload, actor)
                nursery.start_soon(delete)
                await trio.sleep(0.05)
                start.set()

            async with admin(empty_db_for_module) as conn:
                rows = await conn.fetchval(
                    "SELECT count(*) FROM tasks WHERE user_id = $1", user["id"]
                )
            folder = images_dir / f"{user['id'] % 1000:03d}" / str(user["id"])
            if rows or folder.exists():
                left_behind.append((trial, rows, folder.exists()))

    print(
        f"answers to the uploads: {dict(statuses)}; to the deletions: {dict(deletions)};"
        f" trials with an upload answered neither 201 nor 401: {len(failed_trials)}/{TRIALS};"
        f" trials leaving rows or a folder: {len(left_behind)}/{TRIALS}"
    )
    assert deletions == {204: TRIALS}
    assert set(statuses) <= {201, 401}, statuses
    assert statuses[401] > 0  # the race was run: uploads came after deletions
    assert left_behind == []
