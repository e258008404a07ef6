"""A fake Stack Exchange API (``/2.3/search``) for the tests and the offline demo.

Deterministic questions (the same query, the same questions), paging with ``has_more``,
gzipped bodies, ``quota_remaining``, and on demand: a ``backoff``, error bodies, throttling
(HTTP 429 or ``throttle_violation``), slowness. The behaviour is switched by changing
:class:`FakeApiState` (tests in the same process) or with ``POST /_fake/state`` (JSON of the
same fields; ``{"generation": "+1"}`` makes every answer change, as after edits on the site).

Run it: ``python -m service.search.fake_api --port 8099``.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import random
import zlib
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

__all__ = ["FakeApiState", "create_fake_api", "fake_questions", "serve_fake_api"]

#: 2026-01-01T00:00:00Z: the generated questions were asked in the year before it.
_EPOCH = 1_767_225_600
_VERBS = ("use", "configure", "debug", "test", "speed up", "install", "deploy", "parse")
_ENDINGS = (
    "in production",
    "without blocking",
    "with &quot;strict&quot; mode",
    "on Windows",
    "when the input is empty",
    "and keep the order",
    "from a config file",
    "across processes",
)
_NAMES = ("Ana", "Bartosz", "Chen Wei", "D&#39;Souza", "Emeka", "Farah", "Gustavo", "Hina")
_TAGS = ("python", "trio", "postgresql", "redis", "http", "async", "sql", "testing", "linux")


@dataclass
class FakeApiState:
    """What the fake does; change a field and the next request sees it."""

    #: Bumped to make scores, views and activity change (as a refresh would find).
    generation: int = 0
    #: Sent as ``backoff`` in every answer, if set.
    backoff_s: int | None = None
    #: Answer with this error body: [status, error_id, error_name, error_message].
    error: list[Any] | None = None
    #: "429": HTTP 429 without a body; "502": the API's throttle_violation body.
    throttle: str | None = None
    delay_s: float = 0.0
    #: False: the body is gzipped but no Content-Encoding says so.
    gzip_header: bool = True
    quota_max: int = 10_000
    quota_remaining: int = 10_000
    #: Site names answered as the API answers a site it does not have (bad_parameter).
    unknown_sites: set[str] = field(default_factory=set)
    #: Calls of /2.3/search, in all and per (site, intitle).
    calls: int = 0
    calls_by_query: Counter[tuple[str, str]] = field(default_factory=Counter)


def fake_questions(site: str, text: str, generation: int = 0) -> list[dict[str, Any]]:
    """Every question the fake finds for ``text`` on ``site`` (120-320 of them; none for
    a text with "nothing" in it), in the API's item format."""
    key = f"{site}:{text.strip().lower()}"
    rng = random.Random(zlib.crc32(key.encode()))
    count = 0 if "nothing" in text.lower() else rng.randrange(120, 321)
    base_id = 10_000_000 + (zlib.crc32(key.encode()) % 60_000) * 1000
    slug = "-".join(text.lower().split())
    items = []
    for index in range(count):
        created = _EPOCH - rng.randrange(3600, 365 * 86400)
        activity = min(_EPOCH, created + rng.randrange(0, 90 * 86400)) + generation * 3600
        score = rng.randrange(-3, 400) + generation * (index % 3)
        answers = rng.randrange(0, 12)
        question_id = base_id + index
        title = f"How do I {rng.choice(_VERBS)} {text.strip()} {rng.choice(_ENDINGS)}?"
        items.append(
            {
                "tags": sorted(rng.sample(_TAGS, rng.randrange(1, 4))),
                "owner": {
                    "account_id": rng.randrange(1, 10**7),
                    "reputation": rng.randrange(1, 50_000),
                    "user_id": rng.randrange(1, 10**7),
                    "user_type": "registered",
                    "display_name": rng.choice(_NAMES),
                },
                "is_answered": answers > 0 and rng.random() < 0.8,
                "view_count": rng.randrange(10, 200_000) + generation * 7,
                "answer_count": answers,
                "score": score,
                "last_activity_date": activity,
                "creation_date": created,
                "question_id": question_id,
                "content_license": "CC BY-SA 4.0",
                "link": f"https://{site}.com/questions/{question_id}/{slug}",
                "title": title,
            }
        )
    return items


_SORT_KEYS = {
    "activity": "last_activity_date",
    "votes": "score",
    "creation": "creation_date",
}


def create_fake_api(state: FakeApiState | None = None) -> QuartTrio:
    """The fake as an app; ``app.config["FAKE_STATE"]`` is its state."""
    app = QuartTrio(__name__)
    app.config["FAKE_STATE"] = fake = state or FakeApiState()

    def answer(body: dict[str, Any], status: int = 200) -> Response:
        if fake.backoff_s is not None:
            body["backoff"] = fake.backoff_s
        raw = gzip.compress(orjson.dumps(body))
        headers = {"Content-Encoding": "gzip"} if fake.gzip_header else {}
        return Response(raw, status=status, headers=headers, content_type="application/json")

    def error(status: int, error_id: int, name: str, message: str) -> Response:
        return answer({"error_id": error_id, "error_message": message, "error_name": name}, status)

    @app.get("/2.3/search")
    async def search() -> Response:
        fake.calls += 1
        args = request.args
        site, text = args.get("site", ""), args.get("intitle", "")
        fake.calls_by_query[(site, text)] += 1
        if fake.delay_s:
            await trio.sleep(fake.delay_s)
        if fake.throttle == "429":
            return Response(b"", status=429, headers={"Retry-After": "30"})
        if fake.throttle is not None:
            return error(
                400,
                502,
                "throttle_violation",
                "too many requests from this IP, more requests available in 30 seconds",
            )
        if fake.error is not None:
            status, error_id, name, message = fake.error
            return error(int(status), int(error_id), str(name), str(message))
        if fake.quota_remaining <= 0:
            return error(400, 502, "throttle_violation", "out of quota for today")
        if not site:
            return error(400, 400, "bad_parameter", "site is required")
        if site in fake.unknown_sites:
            return error(400, 400, "bad_parameter", f"No site found for name `{site}`")
        if not text and not args.get("tagged"):
            return error(400, 400, "bad_parameter", "one of tagged or intitle must be set")
        try:
            page = int(args.get("page", "1"))
            page_size = int(args.get("pagesize", "30"))
        except ValueError:
            return error(400, 400, "bad_parameter", "page and pagesize must be integers")
        if page < 1 or not 0 <= page_size <= 100:
            return error(400, 400, "bad_parameter", "pagesize must be 0-100, page >= 1")
        fake.quota_remaining -= 1
        items = fake_questions(site, text, fake.generation)
        sort_key = _SORT_KEYS.get(args.get("sort", "activity"))
        if sort_key is not None:
            items.sort(
                key=lambda item: (item[sort_key], item["question_id"]),
                reverse=args.get("order", "desc") == "desc",
            )
        start = (page - 1) * page_size
        return answer(
            {
                "items": items[start : start + page_size],
                "has_more": start + page_size < len(items),
                "quota_max": fake.quota_max,
                "quota_remaining": fake.quota_remaining,
            }
        )

    @app.post("/_fake/state")
    async def change_state() -> Response:
        changes = await request.get_json(force=True)
        names = {f.name for f in fields(FakeApiState)} - {"calls", "calls_by_query"}
        for name, value in dict(changes).items():
            if name not in names:
                return Response(f"unknown field {name}", status=400)
            if name == "generation" and value == "+1":
                value = fake.generation + 1
            setattr(fake, name, value)
        return Response(
            orjson.dumps({"generation": fake.generation}), content_type="application/json"
        )

    @app.get("/_fake/state")
    async def show_state() -> Response:
        body = {f.name: getattr(fake, f.name) for f in fields(FakeApiState)}
        body["calls_by_query"] = {f"{s}:{t}": n for (s, t), n in fake.calls_by_query.items()}
        return Response(orjson.dumps(body), content_type="application/json")

    return app


async def serve_fake_api(
    state: FakeApiState,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the fake until cancelled; ``task_status`` gets its base URL."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None

    async def started(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(create_fake_api(state), config, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(started)
        task_status.started(binds[0])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m service.search.fake_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                functools.partial(serve_fake_api, FakeApiState(), host=args.host, port=args.port)
            )
            print(f"fake Stack Exchange API on {url}/2.3/search", flush=True)

    trio.run(run)


if __name__ == "__main__":
    main()
