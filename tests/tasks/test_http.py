"""The task API over HTTP (quart-trio's test client) on a real PostgreSQL: the contract,
images byte for byte, other users' tasks, counters, cascades and every kind of bad input."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from service.accounts.passwords import Passwords
from service.app import create_app
from service.platform.settings import Settings
from tests.support.pg_admin import admin
from tests.support.task_images import b64, image_bytes, noisy_bytes

pytestmark = pytest.mark.integration

PASSWORD = "correct horse"
MAX_BYTES = 20_000


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@asynccontextmanager
async def client_of(env: dict[str, str]) -> AsyncIterator[Any]:
    """A test client of the whole app with ``env`` as its environment (no fan-out sources)."""

    @asynccontextmanager
    async def no_sources(_settings: Settings) -> AsyncIterator[list[Any]]:
        yield []

    settings = Settings.from_env({"SECRET_KEY": "k" * 40, **env})
    app = create_app(settings, open_sources=no_sources, passwords=Passwords.cheap())
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture
async def api(empty_db: str, images_dir: Path) -> AsyncIterator[Any]:
    env = {
        "DATABASE_URL": empty_db,
        "IMAGES_DIR": str(images_dir),
        "MAX_IMAGE_BYTES": str(MAX_BYTES),
        "MAX_IMAGE_PIXELS": "1000000",
    }
    async with client_of(env) as client:
        yield client


async def user(api: Any, email: str) -> dict[str, Any]:
    """Register and log in; the user's id and ready-made headers."""
    registered = await api.post("/api/register/", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201
    tokens = await (
        await api.post("/api/login/", json={"email": email, "password": PASSWORD})
    ).get_json()
    user_id = (await registered.get_json())["id"]
    return {"id": user_id, "headers": {"Authorization": f"Bearer {tokens['access_token']}"}}


async def create(api: Any, who: dict[str, Any], data: bytes, meta: str = "") -> Any:
    return await api.post(
        "/api/tasks/", json={"image": b64(data), "meta": meta}, headers=who["headers"]
    )


def stored_files(images_dir: Path) -> list[Path]:
    return sorted(p for p in images_dir.rglob("*") if p.is_file()) if images_dir.exists() else []


async def task_rows(dsn: str) -> int:
    async with admin(dsn) as conn:
        return int(await conn.fetchval("SELECT count(*) FROM tasks"))


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"])
async def test_an_image_comes_back_byte_for_byte_with_its_type(
    api: Any, kind: str, images_dir: Path
) -> None:
    alice = await user(api, "alice@example.com")
    data = image_bytes(kind, color="green")
    created = await create(api, alice, data, meta="first")
    assert created.status_code == 201
    task = await created.get_json()
    assert set(task) == {"id", "meta", "status", "created_at", "image_url", "image_type"}
    assert (task["meta"], task["status"]) == ("first", "free")
    assert created.headers["Location"] == f"/api/tasks/{task['id']}/"
    image = await api.get(task["image_url"], headers=alice["headers"])
    assert image.status_code == 200
    assert await image.get_data() == data
    assert image.headers["Content-Type"] == task["image_type"]
    assert image.headers["Content-Type"] == f"image/{kind.lower()}"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    etag = image.headers["ETag"]
    assert etag == f'"{hashlib.sha256(data).hexdigest()}"'
    again = await api.get(task["image_url"], headers={**alice["headers"], "If-None-Match": etag})
    assert again.status_code == 304
    assert [p.read_bytes() for p in stored_files(images_dir)] == [data]


async def test_one_task_is_read_and_listed_newest_first_with_a_cursor(api: Any) -> None:
    alice = await user(api, "alice@example.com")
    ids = [
        (await (await create(api, alice, image_bytes(), meta=str(n))).get_json())["id"]
        for n in range(5)
    ]
    one = await api.get(f"/api/tasks/{ids[0]}/", headers=alice["headers"])
    assert (await one.get_json())["meta"] == "0"
    seen: list[int] = []
    cursor = ""
    while True:
        page = await (
            await api.get(f"/api/tasks/?limit=2&cursor={cursor}", headers=alice["headers"])
        ).get_json()
        seen += [task["id"] for task in page["tasks"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == sorted(ids, reverse=True)
    default = await (await api.get("/api/tasks", headers=alice["headers"])).get_json()
    assert [t["id"] for t in default["tasks"]] == seen
    assert default["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=x", "limit=-1", "limit=" + "9" * 5000, "cursor=abc"],
    ids=lambda query: query if len(query) < 20 else "limit=<5000 digits>",
)
async def test_bad_paging_is_400(api: Any, query: str) -> None:
    alice = await user(api, "alice@example.com")
    response = await api.get(f"/api/tasks/?{query}", headers=alice["headers"])
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "invalid"


async def test_another_users_task_is_404_everywhere(api: Any, images_dir: Path) -> None:
    alice = await user(api, "alice@example.com")
    bob = await user(api, "bob@example.com")
    task = await (await create(api, alice, image_bytes())).get_json()
    for method, path in (
        ("GET", f"/api/tasks/{task['id']}/"),
        ("GET", f"/api/tasks/{task['id']}/image"),
        ("DELETE", f"/api/tasks/{task['id']}/"),
    ):
        theirs = await api.open(path, method=method, headers=bob["headers"])
        missing = await api.open(
            path.replace(str(task["id"]), "999999"), method=method, headers=bob["headers"]
        )
        assert theirs.status_code == missing.status_code == 404
        assert (await theirs.get_json())["error"] == (await missing.get_json())["error"]
    assert (await (await api.get("/api/tasks/", headers=bob["headers"])).get_json())["tasks"] == []
    assert (await api.post("/api/tasks/take/", headers=bob["headers"])).status_code == 204
    assert len(stored_files(images_dir)) == 1


async def test_take_hands_out_each_free_task_once_oldest_first(api: Any) -> None:
    alice = await user(api, "alice@example.com")
    ids = [(await (await create(api, alice, image_bytes())).get_json())["id"] for _ in range(3)]
    taken = []
    for _ in range(3):
        response = await api.post("/api/tasks/take/", headers=alice["headers"])
        assert response.status_code == 200
        body = await response.get_json()
        assert body["status"] == "taken"
        taken.append(body["id"])
    assert taken == ids
    assert (await api.post("/api/tasks/take", headers=alice["headers"])).status_code == 204
    assert (await api.get("/api/tasks/take/", headers=alice["headers"])).status_code == 405
    listed = await (await api.get("/api/tasks/", headers=alice["headers"])).get_json()
    assert {t["status"] for t in listed["tasks"]} == {"taken"}


async def test_deleting_a_task_removes_row_and_file_but_no_counter(
    api: Any, images_dir: Path, empty_db: str
) -> None:
    alice = await user(api, "alice@example.com")
    task = await (await create(api, alice, image_bytes())).get_json()
    deleted = await api.delete(f"/api/tasks/{task['id']}/", headers=alice["headers"])
    assert deleted.status_code == 204
    assert stored_files(images_dir) == []
    assert await task_rows(empty_db) == 0
    assert (await api.get(f"/api/tasks/{task['id']}/", headers=alice["headers"])).status_code == 404
    me = await (await api.get("/api/me/", headers=alice["headers"])).get_json()
    assert me["tasks_created"] == 1
    total = await (await api.get("/api/stats/tasks-created/")).get_json()
    assert total == {"total": 1}


async def test_deleting_a_user_removes_their_tasks_and_files_and_keeps_the_total(
    api: Any, images_dir: Path, empty_db: str
) -> None:
    alice = await user(api, "alice@example.com")
    bob = await user(api, "bob@example.com")
    for _ in range(3):
        await create(api, alice, image_bytes())
    bobs = await (await create(api, bob, image_bytes("GIF"))).get_json()
    forbidden = await api.delete(f"/api/users/{bob['id']}/", headers=alice["headers"])
    assert forbidden.status_code == 403
    assert (await forbidden.get_json())["error"] == "forbidden"

    gone = await api.delete(f"/api/users/{alice['id']}/", headers=alice["headers"])
    assert gone.status_code == 204
    assert await task_rows(empty_db) == 1
    assert len(stored_files(images_dir)) == 1  # bob's
    assert (
        await api.get(f"/api/tasks/{bobs['id']}/image", headers=bob["headers"])
    ).status_code == 200
    assert (await api.get("/api/me/", headers=alice["headers"])).status_code == 401
    async with admin(empty_db) as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM accounts_users WHERE id = $1", alice["id"])
            == 0
        )
        counters = await conn.fetchval(
            "SELECT count(*) FROM tasks_created_per_user WHERE user_id = $1", alice["id"]
        )
        assert counters == 0
    assert not (images_dir / f"{alice['id'] % 1000:03d}" / str(alice["id"])).exists()
    total = await (await api.get("/api/stats/tasks-created")).get_json()
    assert total == {"total": 4}
    me = await (await api.get("/api/me/", headers=bob["headers"])).get_json()
    assert me["tasks_created"] == 1


async def test_the_total_is_the_sum_over_users_and_needs_no_login(api: Any) -> None:
    assert await (await api.get("/api/stats/tasks-created/")).get_json() == {"total": 0}
    for n, email in enumerate(["a@example.com", "b@example.com", "c@example.com"]):
        who = await user(api, email)
        for _ in range(n + 1):
            assert (await create(api, who, image_bytes())).status_code == 201
    assert await (await api.get("/api/stats/tasks-created/")).get_json() == {"total": 6}


def big_noise_png() -> bytes:
    import io
    import os

    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(30_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def one_colour(size: tuple[int, int]) -> bytes:
    return image_bytes("PNG", size=size, color="white")


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("not-base64", {"image": "%%%not base64%%%"}, 400, "invalid_image"),
    ("text", {"image": b64(b"just some text")}, 400, "invalid_image"),
    ("magic-only", {"image": b64(b"\x89PNG\r\n\x1a\n" + bytes(40))}, 400, "invalid_image"),
    ("truncated", {"image": b64(big_noise_png()[:3000])}, 400, "invalid_image"),
    ("too-many-bytes", {"image": b64(big_noise_png())}, 413, "image_too_large"),
    ("too-many-pixels", {"image": b64(one_colour((2000, 1000)))}, 413, "image_too_large"),
    ("no-image", {"meta": "x"}, 400, "invalid"),
    ("image-not-string", {"image": 5}, 400, "invalid"),
    ("meta-not-string", {"image": b64(image_bytes()), "meta": 1}, 400, "invalid"),
    ("unknown-field", {"image": b64(image_bytes()), "user_id": 2}, 400, "invalid"),
    ("not-an-object", [1, 2], 400, "invalid"),
    ("ico", {"image": b64(image_bytes("ICO", size=(16, 16)))}, 400, "unsupported_image_type"),
    ("meta-too-long", {"image": b64(image_bytes()), "meta": "x" * 10_001}, 400, "invalid"),
    ("meta-nul", {"image": b64(image_bytes()), "meta": "a\x00b"}, 400, "invalid"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"), [case[1:] for case in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
async def test_bad_input_is_refused_clearly_and_leaves_nothing(
    api: Any, images_dir: Path, empty_db: str, body: Any, status: int, code: str
) -> None:
    alice = await user(api, "alice@example.com")
    response = await api.post("/api/tasks/", json=body, headers=alice["headers"])
    assert response.status_code == status
    answer = await response.get_json()
    assert answer["error"] == code
    assert answer["detail"]
    assert stored_files(images_dir) == []
    assert await task_rows(empty_db) == 0
    me = await (await api.get("/api/me/", headers=alice["headers"])).get_json()
    assert me["tasks_created"] == 0


async def test_not_json_is_415_and_a_body_over_the_limit_is_413(api: Any, images_dir: Path) -> None:
    alice = await user(api, "alice@example.com")
    form = await api.post("/api/tasks/", form={"image": "x"}, headers=alice["headers"])
    assert form.status_code == 415
    broken = await api.post(
        "/api/tasks/",
        data=b'{"image": ',
        headers={**alice["headers"], "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    huge = await api.post(
        "/api/tasks/",
        data=b'{"image": "' + b"A" * 40_000 + b'"}',
        headers={**alice["headers"], "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert stored_files(images_dir) == []


async def test_the_image_limit_is_only_on_the_task_endpoint(api: Any) -> None:
    big = {"email": "a@example.com", "password": "x" * 70_000}
    assert (await api.post("/api/register/", json=big)).status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/tasks/"),
        ("GET", "/api/tasks/"),
        ("GET", "/api/tasks/1/"),
        ("GET", "/api/tasks/1/image"),
        ("DELETE", "/api/tasks/1/"),
        ("POST", "/api/tasks/take/"),
        ("DELETE", "/api/users/1/"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic abc"])
async def test_every_task_endpoint_needs_a_valid_access_token(
    api: Any, method: str, path: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await api.open(path, method=method, headers=headers, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.get_json())["error"] == "unauthorized"


async def test_user_ids_in_the_query_string_are_ignored(api: Any) -> None:
    alice = await user(api, "alice@example.com")
    bob = await user(api, "bob@example.com")
    await create(api, alice, image_bytes())
    response = await api.get(f"/api/tasks/?user_id={alice['id']}", headers=bob["headers"])
    assert (await response.get_json())["tasks"] == []
    assert (await api.get(f"/api/tasks/?user_id={alice['id']}")).status_code == 401


async def test_the_last_admin_cannot_delete_themself(api: Any, empty_db: str) -> None:
    root = await user(api, "root@example.com")
    async with admin(empty_db) as conn:
        await conn.execute("UPDATE accounts_users SET is_admin = true WHERE id = $1", root["id"])
    response = await api.delete(f"/api/users/{root['id']}/", headers=root["headers"])
    assert response.status_code == 409
    assert (await response.get_json())["error"] == "last_admin"
    assert (await api.get("/api/me/", headers=root["headers"])).status_code == 200


@pytest.mark.parametrize(("method", "suffix"), [("GET", "/"), ("GET", "/image"), ("DELETE", "/")])
async def test_an_id_past_bigint_is_404_not_500(api: Any, method: str, suffix: str) -> None:
    alice = await user(api, "alice@example.com")
    path = f"/api/tasks/{2**63}{suffix}"
    response = await api.open(path, method=method, headers=alice["headers"])
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "not_found"


@pytest.fixture
async def roomy_api(empty_db: str, images_dir: Path) -> AsyncIterator[Any]:
    """The API with images up to 100,000 bytes: bodies past the app's 64 KiB."""
    env = {"DATABASE_URL": empty_db, "IMAGES_DIR": str(images_dir), "MAX_IMAGE_BYTES": "100000"}
    async with client_of(env) as client:
        yield client


async def test_the_task_endpoint_takes_bodies_past_64_kib_up_to_its_own_limit(
    roomy_api: Any, images_dir: Path
) -> None:
    alice = await user(roomy_api, "alice@example.com")
    large = image_bytes("BMP", size=(150, 150))  # 67,554 bytes
    assert len(b64(large)) > 64 * 1024
    # The longest meta, every character a JSON-escaped surrogate pair: 120,000 bytes.
    created = await create(roomy_api, alice, large, meta="\U0001f600" * 10_000)
    assert created.status_code == 201
    assert len(stored_files(images_dir)) == 1
    too_big = await roomy_api.post(
        "/api/tasks/",
        data=b'{"image": "' + b"A" * 400_000 + b'"}',
        headers={**alice["headers"], "Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    assert len(stored_files(images_dir)) == 1


async def test_the_scan_limit_is_configured_with_max_jpeg_scans(
    empty_db: str, images_dir: Path
) -> None:
    env = {"DATABASE_URL": empty_db, "IMAGES_DIR": str(images_dir), "MAX_JPEG_SCANS": "9"}
    async with client_of(env) as api:
        alice = await user(api, "alice@example.com")
        progressive = noisy_bytes("JPEG", size=(16, 16), progressive=True)  # 10 scans
        refused = await create(api, alice, progressive)
        assert refused.status_code == 413
        assert (await refused.get_json())["error"] == "too_many_scans"
        assert (await create(api, alice, noisy_bytes("JPEG", size=(16, 16)))).status_code == 201
        assert len(stored_files(images_dir)) == 1


RANGE_CASES: list[tuple[str, int, slice | None]] = [
    ("bytes=0-9", 206, slice(0, 10)),
    ("bytes=10-", 206, slice(10, None)),
    ("bytes=-5", 206, slice(-5, None)),
    ("bytes=0-99999", 206, slice(0, None)),
    ("bytes=-99999", 206, slice(0, None)),
    ("bytes=0-0", 206, slice(0, 1)),
    ("bytes=abc", 200, None),
    ("bytes=5-2", 200, None),
    ("items=0-5", 200, None),
    ("bytes=0-1,4-5", 200, None),
    ("bytes=99999-", 416, None),
    ("bytes=-0", 416, None),
    # More digits than int() converts (4,300): a position past every length.
    ("bytes=" + "9" * 5000 + "-", 416, None),
    ("bytes=0-" + "9" * 5000, 206, slice(0, None)),
    ("bytes=-" + "9" * 5000, 206, slice(0, None)),
]


@pytest.mark.parametrize(
    ("header", "status", "part"),
    RANGE_CASES,
    ids=[c[0].replace("9" * 5000, "<5000 nines>") for c in RANGE_CASES],
)
async def test_ranges_of_an_image_follow_rfc_9110(
    api: Any, header: str, status: int, part: slice | None
) -> None:
    alice = await user(api, "alice@example.com")
    data = image_bytes("PNG", size=(3, 3))
    size = len(data)
    task = await (await create(api, alice, data)).get_json()
    response = await api.get(task["image_url"], headers={**alice["headers"], "Range": header})
    body = await response.get_data()
    assert response.status_code == status
    assert int(response.headers["Content-Length"]) == len(body)
    if status == 206:
        assert part is not None
        start, stop, _ = part.indices(size)
        assert body == data[part]
        assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
        assert response.headers["Content-Type"] == "image/png"
    elif status == 200:
        assert body == data
        assert "Content-Range" not in response.headers
    else:
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert (await response.get_json())["error"] == "range_not_satisfiable"


async def test_if_range_and_if_none_match_come_before_range(api: Any) -> None:
    alice = await user(api, "alice@example.com")
    data = image_bytes("PNG", size=(3, 3))
    task = await (await create(api, alice, data)).get_json()
    url, headers = task["image_url"], {**alice["headers"], "Range": "bytes=0-3"}
    etag = (await api.get(url, headers=alice["headers"])).headers["ETag"]
    same = await api.get(url, headers={**headers, "If-Range": etag})
    assert (same.status_code, await same.get_data()) == (206, data[:4])
    other = await api.get(url, headers={**headers, "If-Range": '"another version"'})
    assert (other.status_code, await other.get_data()) == (200, data)
    cached = await api.get(url, headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304
