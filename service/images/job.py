"""One run of ``images process``: checks the directories, opens the journal, the HTTP
client, the CPU workers, the stats reporter, the progress bar and the signal handling around
the pipeline, and says how it went."""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import httpx
import trio

from .cpu import DEFAULT_CPU_TIMEOUT_S, open_cpu_runner
from .dstlock import DstLock, remove_partials
from .journal import JOURNAL_NAME, Journal, Record
from .paths import check_directories
from .pipeline import Control, Stages, run_pipeline
from .progress import NullProgress, ProgressView
from .remote import HttpRemote, RetryPolicy
from .stats import Counters, HttpStats, send_report, serve_stats
from .steps import process_file
from .walk import Lister, os_lister, walk_images

__all__ = ["JobOptions", "JobResult", "run_job"]


@dataclass(frozen=True)
class JobOptions:
    """Everything a run is told (the command line's options)."""

    src: str
    dst: str
    max_size: tuple[int, int] = (1024, 1024)
    rotate_deg: float = 0.0
    workers: int = 2
    concurrency: int = 16
    remote_url: str | None = None
    stats_url: str | None = None
    cpu: str = "processes"
    retry_failed: bool = False
    remote_deadline_s: float = 10.0
    remote_attempts: int = 6
    stats_interval_s: float = 5.0
    cpu_timeout_s: float = DEFAULT_CPU_TIMEOUT_S
    #: Count the tree for the progress bar's total (a second, metadata-only walk).
    count: bool = True


@dataclass
class JobResult:
    completed: bool  # False: stopped by a signal or aborted (the rerun resumes)
    counters: Counters
    journal_path: str
    signals: list[int] = field(default_factory=list)


async def run_job(
    options: JobOptions,
    *,
    progress: ProgressView | None = None,
    say: Callable[[str], None] = print,
    handle_signals: bool = True,
    control: Control | None = None,
) -> JobResult:
    """Process the tree; the first SIGINT or SIGTERM stops the walk and lets the images in
    flight finish and be recorded, a second one stops at once (what is recorded stays).
    One run per DST at a time (``DstBusyError``); after a run that did not end cleanly the
    half-written outputs it left are removed first."""
    src, exclude, dst = _prepare_directories(options)
    control = control or Control()
    with DstLock(dst) as lock:
        if lock.unclean:
            removed = await trio.to_thread.run_sync(remove_partials, dst)
            say(f"the last run did not end cleanly: removed {removed} half-written outputs")
        result = await _run_locked(
            options, src, exclude, dst, progress or NullProgress(), say, handle_signals, control
        )
        if not control.aborted:  # an abort may kill workers mid-write
            lock.ended_cleanly()
    return result


async def _run_locked(
    options: JobOptions,
    src: str,
    exclude: str | None,
    dst: str,
    view: ProgressView,
    say: Callable[[str], None],
    handle_signals: bool,
    control: Control,
) -> JobResult:
    journal = Journal(os.path.join(dst, JOURNAL_NAME))
    counters = Counters(started_at=trio.current_time())
    result = JobResult(False, counters, journal.path)
    try:
        journal.check_options(
            {"max_size": "{}x{}".format(*options.max_size), "rotate_deg": f"{options.rotate_deg:g}"}
        )
        lister = os_lister(src, exclude=exclude)
        found = _Found()

        def on_record(record: Record) -> None:
            view.update(done=counters.done, left_total=found.left(counters), found=found.count)

        connections = options.concurrency + 2
        async with (
            httpx.AsyncClient(
                timeout=None,  # the trio deadline around each call is the timeout
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
            ) as client,
            open_cpu_runner(options.cpu, options.workers, timeout_s=options.cpu_timeout_s) as cpu,
            trio.open_nursery() as nursery,
        ):
            if handle_signals:
                await nursery.start(_serve_signals, control, result, say)
            stats = HttpStats(client, options.stats_url) if options.stats_url else None
            if stats is not None:
                nursery.start_soon(
                    functools.partial(
                        serve_stats, stats, counters, interval_s=options.stats_interval_s
                    )
                )
            if options.count and not isinstance(view, NullProgress):
                nursery.start_soon(_count_tree, lister, found, on_record)
            stages = Stages(
                src=src,
                dst=dst,
                lister=lister,
                journal=journal,
                processor=functools.partial(
                    process_file, max_size=options.max_size, rotate_deg=options.rotate_deg
                ),
                cpu=cpu,
                workers=options.workers,
                remote=HttpRemote(client, options.remote_url) if options.remote_url else None,
                concurrency=options.concurrency,
                retry_policy=RetryPolicy(
                    attempts=options.remote_attempts, deadline_s=options.remote_deadline_s
                ),
                retry_failed=options.retry_failed,
            )
            result.completed = await run_pipeline(stages, counters, control, on_record)
            nursery.cancel_scope.cancel()
            if stats is not None:
                with trio.CancelScope(shield=True):
                    await send_report(stats, counters, 2.0, final=True)
    finally:
        view.close()
        journal.close()
    return result


def _prepare_directories(options: JobOptions) -> tuple[str, str | None, str]:
    """SRC, the directory to leave out of its walk, DST (created); a few system calls, once."""
    src, exclude = check_directories(options.src, options.dst)
    os.makedirs(options.dst, exist_ok=True)
    return src, exclude, os.path.realpath(options.dst)


@dataclass
class _Found:
    """The images the counting walk has found so far."""

    count: int = 0
    complete: bool = False

    def left(self, counters: Counters) -> int | None:
        """Images this run has to do in all (None until the count is complete)."""
        if not self.complete:
            return None
        return max(self.count - counters.skipped, counters.done)


def _count_some(iterator: Iterator[str], limit: int) -> int:
    return sum(1 for _ in islice(iterator, limit))


async def _count_tree(lister: Lister, found: _Found, changed: Callable[[Record], None]) -> None:
    iterator = walk_images(lister, on_error=lambda rel, exc: None)
    while counted := await trio.to_thread.run_sync(_count_some, iterator, 10_000):
        found.count += counted
    found.complete = True
    changed(Record("", "ok"))


async def _serve_signals(
    control: Control,
    result: JobResult,
    say: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            result.signals.append(signum)
            if len(result.signals) == 1:
                say(
                    "stopping: finishing the images in flight and writing the journal"
                    " (again to stop at once)"
                )
                control.stop()
            else:
                say("stopping at once")
                control.abort()
