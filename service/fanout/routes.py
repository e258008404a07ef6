"""The fan-out's HTTP surface: ``/data``, ``/ready``, ``/health`` and the demo's JSON files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import orjson
import trio
from quart import Blueprint, Response, request
from quart_schema import document_response

from ..platform.lifespan import WhileServing, background_tasks, hold_while_serving
from ..platform.log_throttle import LogThrottle
from ..platform.responses import json_response
from ..platform.settings import Settings
from .admission import AdmissionControl, OverloadedError
from .backends import open_backends
from .coalesce import Coalescer
from .gather import gather
from .outcome import server_timing_header
from .readiness import check_sources
from .schemas import Health, Overloaded, Ready, Rows
from .source import Source

__all__ = ["SourcesFactory", "create_blueprint"]

logger = logging.getLogger("service.fanout.routes")

#: Opens the sources for the lifetime of the app (one per worker) and closes them after.
SourcesFactory = Callable[[Settings], AbstractAsyncContextManager[Sequence[Source]]]


def _configured_sources(loop: WhileServing[Any]) -> SourcesFactory:
    """The sources of the settings, on the worker's loop."""

    @asynccontextmanager
    async def open_sources(settings: Settings) -> AsyncIterator[Sequence[Source]]:
        async with open_backends(settings, loop=loop.get()) as backends:
            yield backends.sources

    return open_sources


@dataclass(frozen=True, slots=True)
class Answer:
    """One fan-out, ready to send: the JSON body and the Server-Timing value."""

    body: bytes
    server_timing: str


#: At most one WARNING per source and outcome (and one about shed requests) per interval.
LOG_INTERVAL_S = 10.0


@dataclass
class _AppState:
    admission: AdmissionControl
    throttle: LogThrottle
    sources: Sequence[Source] = field(default_factory=list)
    coalescer: Coalescer[Answer] | None = None


def create_blueprint(
    settings: Settings, *, loop: WhileServing[Any], open_sources: SourcesFactory | None = None
) -> Blueprint:
    """The fan-out's routes and its per-worker lifespan (the sources open while serving).

    ``open_sources`` defaults to the sources of ``settings``, on ``loop`` (the worker's
    asyncio loop, the platform's); tests pass in-memory fakes.
    """
    blueprint = Blueprint("fanout", __name__)
    state = _AppState(
        admission=AdmissionControl(
            settings.admission_limit,
            max_queue=settings.admission_queue,
            max_wait_s=settings.admission_max_wait_s,
        ),
        throttle=LogThrottle(LOG_INTERVAL_S),
    )
    timeouts = settings.source_timeouts()
    # A request may wait for admission at most a quarter of its shortest deadline (and
    # at most ADMISSION_MAX_WAIT_S): it must start while it can still be answered in time.
    start_window_s = min([settings.source_timeout_s, *timeouts.values()]) / 4
    opener = open_sources or _configured_sources(loop)

    async def read_sources(arrived: float) -> Answer:
        result = await gather(
            state.sources,
            settings.source_timeout_s,
            timeouts=timeouts,
            started=arrived,
            throttle=state.throttle,
        )
        return Answer(orjson.dumps(result.rows), server_timing_header(result.reports))

    def overloaded(error: OverloadedError) -> Response:
        held_back = state.throttle.admit("shed")
        if held_back is not None:
            logger.warning(
                "overloaded: shed a request (%s); %d shed since the last line, %d in all;"
                " limit %d in flight, %d queued",
                error.reason,
                held_back,
                state.admission.shed_total,
                state.admission.limit,
                state.admission.queued,
            )
        return json_response(
            {
                "error": "overloaded",
                "message": f"the service is at capacity ({error.reason}); retry later",
                "retry_after_s": error.retry_after_s,
            },
            503,
            {"Retry-After": str(error.retry_after_s)},
        )

    @asynccontextmanager
    async def sources_while_serving() -> AsyncIterator[None]:
        async with opener(settings) as sources, background_tasks() as nursery:
            state.sources = sources
            if settings.coalesce_requests:  # its fan-outs outlive the request that began them
                state.coalescer = Coalescer(read_sources, nursery)
            try:
                yield
            finally:
                state.coalescer = None
                state.sources = []

    hold_while_serving(blueprint, sources_while_serving, name="the fan-out's sources")

    @blueprint.get("/data")
    @document_response(Rows, 200)
    @document_response(Overloaded, 503)
    async def data() -> Response:
        """All rows of every source that answered in time, sorted by id."""
        arrived = trio.current_time()
        if request.args:
            unknown = ", ".join(sorted(request.args.keys()))
            return json_response(
                {
                    "error": "bad_request",
                    "message": f"/data takes no query parameters, got: {unknown}",
                },
                400,
            )
        if state.coalescer is not None:
            # Joining a fan-out in flight costs next to nothing: no admission needed.
            answer, shared = await state.coalescer.read(arrived)
        else:
            try:
                async with state.admission.admit(start_by=arrived + start_window_s):
                    answer, shared = await read_sources(arrived), False
            except OverloadedError as error:
                return overloaded(error)
        timing = answer.server_timing + (', coalesced;desc="shared"' if shared else "")
        return Response(
            answer.body, content_type="application/json", headers={"Server-Timing": timing}
        )

    if settings.serve_demo_files:
        demo_files = _load_demo_sources()

        @blueprint.get("/demo/<name>.json")
        async def demo_source(name: str) -> Response:
            """The static JSON source files of the HTTP demo (same rows as ``seed.sql``)."""
            body = demo_files.get(name)
            if body is None:
                message = f"no demo source {name!r}"
                return json_response({"error": "not_found", "message": message}, 404)
            return Response(body, content_type="application/json")

    @blueprint.get("/health")
    @document_response(Health, 200)
    async def health() -> Response:
        """The process is up and serving; and how loaded this worker is."""
        admission = state.admission
        return json_response(
            {
                "status": "ok",
                "admission": {
                    "limit": admission.limit,
                    "in_flight": admission.in_flight,
                    "queued": admission.queued,
                    "admitted_total": admission.admitted_total,
                    "shed_total": admission.shed_total,
                },
            }
        )

    @blueprint.get("/ready")
    @document_response(Ready, 200)
    @document_response(Ready, 503)
    async def ready() -> Response:
        """Whether each source answers a trivial query now; 503 when any does not."""
        reports = await check_sources(state.sources, settings.source_timeout_s, timeouts=timeouts)
        all_ok = all(not report.failed for report in reports)
        body = {
            "status": "ready" if all_ok else "degraded",
            "sources": {
                report.source: {
                    "status": report.outcome.value,
                    "elapsed_ms": round(report.elapsed_ms, 1),
                    **({"error": report.error_type} if report.error_type else {}),
                }
                for report in reports
            },
        }
        return json_response(body, 200 if all_ok else 503)

    return blueprint


def _load_demo_sources() -> dict[str, bytes]:
    folder = files("service.fanout").joinpath("demo_sources")
    return {
        entry.name.removesuffix(".json"): entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".json")
    }
