"""Where the CPU step runs: worker processes (trio-parallel; the default) or worker threads
(``trio.to_thread``). docs/image-pipeline.md has the measurements behind the default.

Each image has a CPU deadline: a worker process still busy at it is killed (and replaced)
and the image fails; a worker thread cannot be killed, so it is abandoned (it runs on and
its result is dropped) and the image fails. Worker processes ignore SIGINT and SIGTERM: the
run's signal handling decides when they stop, so the stop's signal reaching the whole
process group does not kill the images in flight."""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_parallel

from .pipeline import CpuRunner, Processor, WorkerDiedError
from .steps import ImageFailedError, Processed

__all__ = ["DEFAULT_CPU_TIMEOUT_S", "open_cpu_runner"]

#: A worker process that does not stop within this at the end of the run is killed.
_GRACE_S = 10.0
#: Seconds one image may take in the CPU step.
DEFAULT_CPU_TIMEOUT_S = 60.0


def _ignore_stop_signals() -> None:
    """A worker process's init: SIGINT and SIGTERM are the parent's to act on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _too_slow(timeout_s: float, dst: str) -> ImageFailedError:
    """The image's failure; the killed worker's half-written output is removed."""
    with contextlib.suppress(OSError):
        os.unlink(f"{dst}.partial")
    return ImageFailedError(f"the CPU step took longer than {timeout_s:g} s")


@asynccontextmanager
async def open_cpu_runner(
    kind: str, workers: int, *, timeout_s: float = DEFAULT_CPU_TIMEOUT_S
) -> AsyncIterator[CpuRunner]:
    """A runner for at most ``workers`` CPU calls at once: ``"processes"`` or ``"threads"``;
    a call over ``timeout_s`` raises ``ImageFailedError``."""
    limiter = trio.CapacityLimiter(workers)
    if kind == "threads":

        async def in_thread(processor: Processor, src: str, dst: str) -> Processed:
            with trio.move_on_after(timeout_s):
                return await trio.to_thread.run_sync(
                    processor, src, dst, limiter=limiter, abandon_on_cancel=True
                )
            raise _too_slow(timeout_s, dst)

        yield in_thread
        return
    if kind != "processes":
        raise ValueError(f"unknown CPU runner {kind!r}")
    async with trio_parallel.open_worker_context(
        idle_timeout=math.inf, init=_ignore_stop_signals, grace_period=_GRACE_S
    ) as context:

        async def in_process(processor: Processor, src: str, dst: str) -> Processed:
            with trio.move_on_after(timeout_s):
                try:
                    # kill_on_cancel: the deadline, or an abort, kills a busy worker.
                    result: Processed = await context.run_sync(
                        processor, src, dst, limiter=limiter, kill_on_cancel=True
                    )
                except trio_parallel.BrokenWorkerError as exc:
                    # The worker died on this image (a codec crashed): its failure, not the
                    # run's (the pipeline leaves it undone when the run is stopping).
                    raise WorkerDiedError(f"the worker process died: {exc}") from None
                return result
            raise _too_slow(timeout_s, dst)

        yield in_process
