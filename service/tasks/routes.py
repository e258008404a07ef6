"""The task API's endpoints (JSON; ``Authorization: Bearer <access token>`` of the auth API).

Every path works with and without its trailing slash. Errors are ``{"error", "detail"}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, request, send_file
from quart.typing import ResponseReturnValue
from quart_schema import document_request, document_response, security_scheme

from ..accounts.directory import LastAdminError, directory
from ..auth_api.bearer import INVALID_TOKEN, Account, BearerError, bearer_account
from ..platform.api_routes import ApiError, api_error, api_route
from ..platform.database import Database
from ..platform.json_body import read_json_object
from ..platform.lifespan import WhileServing, background_tasks, hold_while_serving
from ..platform.profile_fields import add_profile_fields
from ..platform.responses import json_response
from ..platform.settings import Settings
from ..platform.user_deletion import on_user_deleted
from .byte_ranges import UNSATISFIABLE, ByteRange, parse_range
from .image_files import ImageFiles
from .images import ImageRejected, max_base64_chars
from .pg_store import PgTaskStore
from .schemas import ApiErrorBody, NewTaskBody, TaskBody, TaskPage, TasksCreated
from .store import Task, UnknownUserError
from .sweep import sweep_orphans
from .task_service import MAX_META_CHARS, InvalidTaskError, TaskService

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "create_blueprint", "request_body_limits", "task_json"]

logger = logging.getLogger("service.tasks.routes")

#: Task ids are PostgreSQL BIGINTs: a larger id names no task.
MAX_ID = 2**63 - 1

#: Page sizes of ``GET /api/tasks/``.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def request_body_limits(settings: Settings) -> dict[tuple[str, str], int]:
    """The body this API accepts on ``POST /api/tasks/``: the largest image in base64,
    plus room for the meta string and the JSON around them."""
    # A meta character is at most 12 bytes of JSON (an escaped surrogate pair).
    room = 12 * MAX_META_CHARS + 64 * 1024
    return {("POST", "/api/tasks/"): max_base64_chars(settings.max_image_bytes) + room}


def failure(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(api_error(code, detail, status, headers))


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "meta": task.meta,
        "status": task.status,
        "created_at": task.created_at.isoformat(),
        "image_url": f"/api/tasks/{task.id}/image",
        "image_type": task.image_type,
    }


@dataclass
class _State:
    service: TaskService | None = None


def create_blueprint(settings: Settings, *, database: WhileServing[Database]) -> Blueprint:
    """The task API, on the worker's application ``database`` (the platform's); without one
    (no ``DATABASE_URL``) it answers 503."""
    blueprint = Blueprint("tasks", __name__)
    files = ImageFiles(settings.images_path)
    state = _State()

    @asynccontextmanager
    async def service_while_serving() -> AsyncIterator[None]:
        opened = database()
        if opened is None:
            yield
            return
        store = PgTaskStore(opened)
        async with background_tasks() as nursery:
            state.service = TaskService(
                store,
                files,
                settings.max_image_bytes,
                settings.max_image_pixels,
                settings.max_image_frames,
                settings.max_jpeg_scans,
            )
            nursery.start_soon(sweep, store)
            try:
                yield
            finally:
                state.service = None

    async def sweep(store: PgTaskStore) -> None:
        try:
            await sweep_orphans(store, files)
        except Exception:
            logger.exception("the start-up sweep of task images failed")

    hold_while_serving(blueprint, service_while_serving, name="the task API's store")

    async def tasks_created_field(user_id: int) -> dict[str, int]:
        if state.service is None:
            return {}
        return {"tasks_created": await state.service.store.tasks_created(user_id)}

    blueprint.record_once(lambda setup: add_profile_fields(setup.app, tasks_created_field))
    # However a user is deleted (the web page, the API), their image files go at once.
    blueprint.record_once(lambda setup: on_user_deleted(setup.app, files.remove_user))

    def route(path: str, methods: list[str]) -> Callable[[Any], Any]:
        return api_route(blueprint, path, methods)

    def service() -> TaskService:
        if state.service is None:
            raise failure(503, "unavailable", "the API needs a database (DATABASE_URL)")
        return state.service

    async def caller() -> Account:
        try:
            return await bearer_account()
        except BearerError as exc:
            code = "unauthorized" if exc.status == 401 else "unavailable"
            raise failure(exc.status, code, exc.detail, exc.headers) from None

    async def own_task(task_id: int) -> tuple[TaskService, Task]:
        account = await caller()
        tasks = service()
        task = await tasks.store.get(account.id, task_id) if task_id <= MAX_ID else None
        if task is None:  # someone else's task looks exactly like a missing one
            raise failure(404, "not_found", f"you have no task {task_id}")
        return tasks, task

    @route("/api/tasks/", ["POST"])
    @security_scheme([{"bearer": []}])
    @document_request(NewTaskBody)
    @document_response(TaskBody, 201)
    @document_response(ApiErrorBody, 400)
    @document_response(ApiErrorBody, 413)
    async def create_task() -> ResponseReturnValue:
        account = await caller()
        tasks = service()
        body = await read_json_object()
        unknown = set(body) - {"image", "meta"}
        if unknown:
            raise failure(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))}")
        image, meta = body.get("image"), body.get("meta", "")
        if not isinstance(image, str):
            raise failure(400, "invalid", "image: a base64 string is required")
        if not isinstance(meta, str):
            raise failure(400, "invalid", "meta: must be a string")
        try:
            task = await tasks.create(account.id, image, meta)
        except ImageRejected as exc:
            raise failure(exc.status, exc.code, exc.detail) from None
        except InvalidTaskError as exc:
            raise failure(400, "invalid", str(exc)) from None
        except UnknownUserError:
            raise failure(
                401, "unauthorized", "the token's user no longer exists", INVALID_TOKEN
            ) from None
        response = json_response(task_json(task), 201)
        response.headers["Location"] = f"/api/tasks/{task.id}/"
        return response

    @route("/api/tasks/", ["GET"])
    @security_scheme([{"bearer": []}])
    @document_response(TaskPage, 200)
    @document_response(ApiErrorBody, 400)
    async def list_tasks() -> ResponseReturnValue:
        account = await caller()
        tasks = service()
        limit = _limit(request.args.get("limit"))
        before = _cursor(request.args.get("cursor"))
        page = await tasks.store.page(account.id, limit, before)
        next_cursor = str(page[-1].id) if len(page) == limit else None
        return json_response(
            {"tasks": [task_json(task) for task in page], "next_cursor": next_cursor}
        )

    @route("/api/tasks/<int:task_id>/", ["GET"])
    @security_scheme([{"bearer": []}])
    @document_response(TaskBody, 200)
    @document_response(ApiErrorBody, 404)
    async def get_task(task_id: int) -> ResponseReturnValue:
        _, task = await own_task(task_id)
        return json_response(task_json(task))

    @route("/api/tasks/<int:task_id>/image", ["GET"])
    @security_scheme([{"bearer": []}])
    @document_response(ApiErrorBody, 404)
    async def get_image(task_id: int) -> ResponseReturnValue:
        """The image's bytes as stored, streamed from disk; ``ETag`` is its SHA-256, so
        ``If-None-Match`` gets ``304``; one ``Range`` gets ``206`` (RFC 9110: see
        :mod:`~service.tasks.byte_ranges`), an unsatisfiable one ``416``."""
        tasks, task = await own_task(task_id)
        path = tasks.image_path(task)
        try:
            response = await send_file(path, mimetype=task.image_type, add_etags=False)
        except FileNotFoundError:
            if await tasks.store.get(task.user_id, task.id) is None:  # deleted meanwhile
                raise failure(404, "not_found", f"you have no task {task_id}") from None
            logger.error("task %d: its image file is missing", task.id)
            raise failure(500, "image_missing", "the task's image file is missing") from None
        response.set_etag(task.image_sha256)
        response.headers["Cache-Control"] = "private, no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.pop("Expires", None)
        # ``If-None-Match`` (304) and ``If-Match`` (412) only: quart's range handling is
        # not used. quart_trio's ``TrioFileBody.make_conditional`` (quart_trio/wrappers/
        # response.py) neither clamps a last position past the end (``bytes=0-99999`` of
        # 102 bytes: ``Content-Length: 100000``, 102 bytes sent) nor resolves a suffix
        # range (``bytes=-5`` seeks to -5: a 500), and quart's
        # ``Response._process_range_request`` (quart/wrappers/response.py) answers 416 to a
        # header that does not parse or names several ranges, where RFC 9110 ignores it.
        await response.make_conditional(request)
        if response.status_code != 200:
            return response
        response.headers["Accept-Ranges"] = "bytes"
        if_range = request.headers.get("If-Range")
        if if_range is not None and if_range.strip() != f'"{task.image_sha256}"':
            return response  # another version's range (or a date): the whole image
        wanted = parse_range(request.headers.get("Range"), task.image_size)
        if wanted == UNSATISFIABLE:
            raise ApiError(
                api_error(
                    "range_not_satisfiable",
                    f"the image has {task.image_size} bytes",
                    416,
                    {"Content-Range": f"bytes */{task.image_size}"},
                )
            )
        if isinstance(wanted, ByteRange):
            # The file body's range, now checked and clamped (``send_file`` made the body).
            body: Any = response.response
            await body.make_conditional(wanted.start, wanted.stop)
            response.status_code = 206
            response.content_length = wanted.size
            response.headers["Content-Range"] = wanted.content_range
        return response

    @route("/api/tasks/<int:task_id>/", ["DELETE"])
    @security_scheme([{"bearer": []}])
    @document_response(ApiErrorBody, 404)
    async def delete_task(task_id: int) -> ResponseReturnValue:
        account = await caller()
        tasks = service()
        if task_id > MAX_ID or not await tasks.delete(account.id, task_id):
            raise failure(404, "not_found", f"you have no task {task_id}")
        return Response("", 204)

    @route("/api/tasks/take/", ["POST"])
    @security_scheme([{"bearer": []}])
    @document_response(TaskBody, 200)
    async def take_task() -> ResponseReturnValue:
        """Hand out one free task of the caller (the oldest), marked taken in the same
        statement: never the same task twice. ``204`` when none is free."""
        account = await caller()
        task = await service().take(account.id)
        if task is None:
            return Response("", 204)
        return json_response(task_json(task))

    @route("/api/stats/tasks-created/", ["GET"])
    @document_response(TasksCreated, 200)
    async def tasks_created() -> ResponseReturnValue:
        """Tasks created by all users, ever (deletions do not lower it); no log-in."""
        return json_response({"total": await service().store.total_created()})

    @route("/api/users/<int:user_id>/", ["DELETE"])
    @security_scheme([{"bearer": []}])
    @document_response(ApiErrorBody, 403)
    @document_response(ApiErrorBody, 409)
    async def delete_user(user_id: int) -> ResponseReturnValue:
        """A user deletes themself: their account, their tasks and their image files."""
        account = await caller()
        service()  # 503 without a database, as every task endpoint
        if user_id != account.id:
            raise failure(403, "forbidden", "you may delete only your own account")
        users = directory()
        if users is None:
            raise failure(503, "unavailable", "the API needs a database (DATABASE_URL)")
        # The row (the tasks go with it: ON DELETE CASCADE), then the folder: the accounts
        # tell this capability's listener, registered with ``on_user_deleted`` above.
        try:
            await users.delete_self(account)
        except LastAdminError as exc:
            raise failure(409, "last_admin", str(exc)) from None
        except PermissionError as exc:
            raise failure(401, "unauthorized", str(exc), INVALID_TOKEN) from None
        except LookupError:
            raise failure(404, "not_found", "no such user") from None
        return Response("", 204)

    return blueprint


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    # Short before int(): it refuses more than 4,300 digits (ValueError, a 500).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_LIMIT:
        raise failure(400, "invalid", f"limit: a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _cursor(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise failure(400, "invalid", "cursor: not a cursor this API gave out (next_cursor)")
    return int(raw)
