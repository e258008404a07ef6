"""However a user is deleted (the web page by themself or by an admin, the API), their image
files are gone when the answer comes, and everyone else's stay (the real app on a real
PostgreSQL, through quart-trio's test client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.platform.user_deletion import on_user_deleted, user_deleted
from tests.support.accounts_app import PASSWORD, Browser, accounts_app, make_admin
from tests.support.task_images import b64, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
async def app(empty_db: str, images_dir: Path) -> AsyncIterator[Any]:
    application = accounts_app(empty_db, IMAGES_DIR=str(images_dir))
    async with application.test_app() as test_app:
        yield test_app


async def user_with_images(app: Any, email: str, images: int = 3) -> dict[str, Any]:
    client = app.test_client()
    credentials = {"email": email, "password": PASSWORD}
    registered = await client.post("/api/register/", json=credentials)
    assert registered.status_code == 201
    tokens = await (await client.post("/api/login/", json=credentials)).get_json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for n in range(images):
        created = await client.post(
            "/api/tasks/", json={"image": b64(image_bytes(color=(n, 0, 0)))}, headers=headers
        )
        assert created.status_code == 201
    return {"id": (await registered.get_json())["id"], "email": email, "headers": headers}


def folder(images_dir: Path, user_id: int) -> Path:
    return images_dir / f"{user_id % 1000:03d}" / str(user_id)


def files_of(images_dir: Path, user_id: int) -> list[Path]:
    return [p for p in folder(images_dir, user_id).rglob("*") if p.is_file()]


async def test_a_user_deleting_themself_on_the_web_takes_their_files(
    app: Any, images_dir: Path
) -> None:
    alice = await user_with_images(app, "alice@example.com")
    bob = await user_with_images(app, "bob@example.com", images=2)
    assert len(files_of(images_dir, alice["id"])) == 3
    browser = Browser(app)
    assert (await browser.login(alice["email"])).status_code == 302
    deleted = await browser.submit(f"/users/{alice['id']}/delete")
    assert deleted.status_code == 302
    assert not folder(images_dir, alice["id"]).exists()
    assert len(files_of(images_dir, bob["id"])) == 2


async def test_an_admin_deleting_a_user_on_the_web_takes_their_files(
    app: Any, images_dir: Path, empty_db: str
) -> None:
    root = await user_with_images(app, "root@example.com", images=1)
    await make_admin(empty_db, root["id"])
    bob = await user_with_images(app, "bob@example.com")
    browser = Browser(app)
    assert (await browser.login(root["email"])).status_code == 302
    deleted = await browser.submit(f"/users/{bob['id']}/delete")
    assert deleted.status_code == 302
    assert not folder(images_dir, bob["id"]).exists()
    assert len(files_of(images_dir, root["id"])) == 1


async def test_a_refused_deletion_on_the_web_keeps_the_files(
    app: Any, images_dir: Path, empty_db: str
) -> None:
    root = await user_with_images(app, "root@example.com", images=2)
    await make_admin(empty_db, root["id"])
    browser = Browser(app)
    assert (await browser.login(root["email"])).status_code == 302
    refused = await browser.submit(f"/users/{root['id']}/delete")  # the last admin
    assert refused.status_code == 409
    assert len(files_of(images_dir, root["id"])) == 2


async def test_a_user_deleting_themself_through_the_api_takes_their_files(
    app: Any, images_dir: Path
) -> None:
    alice = await user_with_images(app, "alice@example.com")
    client = app.test_client()
    gone = await client.delete(f"/api/users/{alice['id']}/", headers=alice["headers"])
    assert gone.status_code == 204
    assert not folder(images_dir, alice["id"]).exists()


async def test_every_listener_hears_of_a_deletion_even_after_one_fails(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[tuple[str, int]] = []

    async def failing(user_id: int) -> None:
        heard.append(("failing", user_id))
        raise OSError("disk gone")

    async def second(user_id: int) -> None:
        heard.append(("second", user_id))

    quart_app = app.app
    on_user_deleted(quart_app, failing)
    on_user_deleted(quart_app, second)
    async with quart_app.app_context():
        await user_deleted(7)
    assert heard == [("failing", 7), ("second", 7)]
    assert "a listener failed after user 7 was deleted" in caplog.text
