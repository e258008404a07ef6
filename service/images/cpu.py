"""Where the CPU step runs: worker processes (trio-parallel; the default) or worker threads
(``trio.to_thread``). docs/image-pipeline.md has the measurements behind the default."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_parallel

from .pipeline import CpuRunner, Processor
from .steps import ImageFailedError, Processed

__all__ = ["open_cpu_runner"]

#: A worker process that does not stop within this at the end of the run is killed.
_GRACE_S = 10.0


@asynccontextmanager
async def open_cpu_runner(kind: str, workers: int) -> AsyncIterator[CpuRunner]:
    """A runner for at most ``workers`` CPU calls at once: ``"processes"`` or ``"threads"``."""
    limiter = trio.CapacityLimiter(workers)
    if kind == "threads":

        async def in_thread(processor: Processor, src: str, dst: str) -> Processed:
            return await trio.to_thread.run_sync(processor, src, dst, limiter=limiter)

        yield in_thread
        return
    if kind != "processes":
        raise ValueError(f"unknown CPU runner {kind!r}")
    async with trio_parallel.open_worker_context(
        idle_timeout=math.inf, grace_period=_GRACE_S
    ) as context:

        async def in_process(processor: Processor, src: str, dst: str) -> Processed:
            try:
                result: Processed = await context.run_sync(processor, src, dst, limiter=limiter)
            except trio_parallel.BrokenWorkerError as exc:
                # The worker died on this image (a codec crashed): its failure, not the run's.
                raise ImageFailedError(f"the worker process died: {exc}") from None
            return result

        yield in_process
