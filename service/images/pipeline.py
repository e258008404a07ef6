"""The bounded pipeline: walk -> CPU stage (``workers`` at once) -> remote stage
(``concurrency`` calls at once) -> sink (journal, counters, progress), joined by trio memory
channels of small capacity. A stage that falls behind makes the ones before it wait, so the
images in flight never exceed the channels' capacities plus the stages' tasks, however big
the tree is.

``Control.stop`` (the first Ctrl-C) ends the walk: what was already walked goes through and
is recorded. ``Control.abort`` (the second) cancels everything; what reached the sink is
still recorded."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import trio

from .journal import Journal, Record
from .paths import journal_key, output_path
from .remote import CircuitBreaker, Remote, RemoteFailedError, RetryPolicy, call_with_retries
from .stats import Counters
from .steps import ImageFailedError, Processed
from .walk import Lister, walk_images

__all__ = ["Control", "CpuRunner", "Processor", "Stages", "WorkerDiedError", "run_pipeline"]

logger = logging.getLogger("service.images.pipeline")

#: The CPU step for one image: (input path, output path) -> what it made. Must pickle (it
#: may run in a worker process): a module-level function or a ``functools.partial`` of one.
Processor = Callable[[str, str], Processed]
#: Runs a processor call off the trio thread (a worker thread or a worker process).
CpuRunner = Callable[[Processor, str, str], Awaitable[Processed]]


class WorkerDiedError(ImageFailedError):
    """The worker process running the image died: the image's failure, unless the run is
    stopping (the stop's signal may have killed it), when the image is just not done."""


#: Paths taken from the walker per trip to its thread and per journal lookup.
WALK_BATCH = 256


@dataclass(frozen=True)
class Job:
    rel: str  # relative to SRC, as the walker gave it
    key: str  # the journal's key for it


@dataclass(frozen=True)
class Stages:
    """What the pipeline is made of: the seams and the sizes."""

    src: str
    dst: str
    lister: Lister
    journal: Journal
    processor: Processor
    cpu: CpuRunner
    workers: int
    remote: Remote | None = None
    concurrency: int = 8
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    retry_failed: bool = False
    #: Failed remote attempts in a row that pause the remote stage (see ``CircuitBreaker``).
    breaker_threshold: int = 10
    max_probe_interval_s: float = 60.0
    #: Capacity of each channel; by default twice the stage's width that reads it.
    capacity: int | None = None
    journal_idle_flush_s: float = 1.0


class Control:
    """Stops a running pipeline, gently (``stop``) or at once (``abort``)."""

    def __init__(self) -> None:
        self.walk_scope = trio.CancelScope()
        self.all_scope = trio.CancelScope()

    @property
    def stopped(self) -> bool:
        return self.walk_scope.cancel_called

    @property
    def aborted(self) -> bool:
        return self.all_scope.cancel_called

    def stop(self) -> None:
        self.walk_scope.cancel()

    def abort(self) -> None:
        self.walk_scope.cancel()
        self.all_scope.cancel()


def _take(iterator: Iterator[str], count: int) -> list[str]:
    return list(islice(iterator, count))


async def run_pipeline(
    stages: Stages,
    counters: Counters,
    control: Control,
    on_record: Callable[[Record], None] = lambda record: None,
) -> bool:
    """Process every image of the tree not yet in the journal; True when the walk reached
    its end and the run was not aborted, False when it was stopped (the rerun resumes)."""
    cpu_cap = stages.capacity or 2 * stages.workers
    remote_cap = stages.capacity or 2 * stages.concurrency
    to_cpu, cpu_in = trio.open_memory_channel[Job](cpu_cap)
    to_remote, remote_in = trio.open_memory_channel[tuple[Job, str, Processed]](remote_cap)
    to_sink, sink_in = trio.open_memory_channel[Record](cpu_cap + remote_cap)
    walked_all = False
    breaker = CircuitBreaker(
        stages.breaker_threshold, max_probe_interval_s=stages.max_probe_interval_s
    )

    async def walk(finished: trio.MemorySendChannel[Record]) -> None:
        nonlocal walked_all
        bad: list[tuple[str, str]] = []  # appended to by the walker's thread

        def unreadable(rel: str, exc: OSError) -> None:
            counters.unreadable_dirs += 1
            _unreadable(rel, exc)

        async def record_bad() -> None:
            entries, bad[:] = bad[:], []
            keys = [journal_key(rel) for rel, _ in entries]
            done = stages.journal.finished_among(keys, retry_failed=stages.retry_failed)
            for key, (_, error) in zip(keys, entries, strict=True):
                if key in done:
                    counters.skipped += 1
                else:
                    await finished.send(Record(key, "failed", error=f"cannot read: {error}"))

        async with to_cpu, finished:
            with control.walk_scope:
                iterator = walk_images(
                    stages.lister,
                    on_error=unreadable,
                    on_bad_entry=lambda rel, error: bad.append((rel, error)),
                )
                while batch := await trio.to_thread.run_sync(_take, iterator, WALK_BATCH):
                    keys = [journal_key(rel) for rel in batch]
                    done = stages.journal.finished_among(keys, retry_failed=stages.retry_failed)
                    for rel, key in zip(batch, keys, strict=True):
                        if key in done:
                            counters.skipped += 1
                        else:
                            await to_cpu.send(Job(rel, key))
                    await record_bad()
                await record_bad()
                walked_all = True

    async def cpu_stage(
        jobs: trio.MemoryReceiveChannel[Job],
        out: trio.MemorySendChannel[tuple[Job, str, Processed]],
        finished: trio.MemorySendChannel[Record],
    ) -> None:
        async with out, finished:
            async for job in jobs:
                if control.stopped:
                    continue  # stopping: only the images in flight finish
                out_rel = output_path(job.rel)
                try:
                    processed = await stages.cpu(
                        stages.processor,
                        os.path.join(stages.src, job.rel),
                        os.path.join(stages.dst, out_rel),
                    )
                except WorkerDiedError as exc:
                    if control.stopped:  # killed by the stop's signal, most likely: not done
                        continue
                    await finished.send(Record(job.key, "failed", error=str(exc)))
                    continue
                except ImageFailedError as exc:
                    await finished.send(Record(job.key, "failed", error=str(exc)))
                    continue
                if stages.remote is None:
                    await finished.send(_record(job, out_rel, processed, None, None))
                else:
                    await out.send((job, out_rel, processed))

    async def remote_stage(
        remote: Remote,
        items: trio.MemoryReceiveChannel[tuple[Job, str, Processed]],
        out: trio.MemorySendChannel[Record],
    ) -> None:
        async with out:
            async for job, out_rel, processed in items:
                if control.stopped:
                    continue  # stopping: only the calls in flight finish; the rerun does these
                answer, error = None, None
                try:
                    answer = await call_with_retries(
                        remote,
                        job.key,
                        processed.payload,
                        processed.content_type,
                        stages.retry_policy,
                        on_retry=_count_retry,
                        breaker=breaker,
                    )
                except RemoteFailedError as exc:
                    counters.remote_failed += 1
                    error = f"remote: {exc}"
                await out.send(_record(job, out_rel, processed, answer, error))

    def _count_retry() -> None:
        counters.retries += 1

    async def sink() -> None:
        try:
            while True:
                try:
                    record = sink_in.receive_nowait()
                except trio.WouldBlock:
                    with trio.move_on_after(stages.journal_idle_flush_s) as idle:
                        try:
                            record = await sink_in.receive()
                        except trio.EndOfChannel:
                            return
                    if idle.cancelled_caught:
                        stages.journal.flush()  # nothing arrived for a while: commit the rest
                        continue
                except trio.EndOfChannel:
                    return
                stages.journal.record(record)
                if record.status == "ok":
                    counters.ok += 1
                else:
                    counters.failed += 1
                on_record(record)
        finally:
            stages.journal.flush()  # also when cancelled: sync, so it still runs

    with control.all_scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sink)
            async with to_sink, to_remote:
                nursery.start_soon(walk, to_sink.clone())
                for _ in range(stages.workers):
                    nursery.start_soon(cpu_stage, cpu_in, to_remote.clone(), to_sink.clone())
                if stages.remote is not None:  # else the CPU stage feeds the sink directly
                    for _ in range(stages.concurrency):
                        nursery.start_soon(remote_stage, stages.remote, remote_in, to_sink.clone())
    return walked_all and not control.aborted


def _record(
    job: Job, out_rel: str, processed: Processed, answer: str | None, error: str | None
) -> Record:
    return Record(
        job.key,
        "failed" if error else "ok",
        output=out_rel,
        width=processed.width,
        height=processed.height,
        magic=processed.magic,
        remote=answer,
        error=error,
    )


def _unreadable(rel: str, exc: OSError) -> None:
    logger.warning("cannot read directory %r: %s", rel or ".", exc.strerror or exc)
