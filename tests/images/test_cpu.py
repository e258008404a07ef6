"""The CPU runner: worker processes that outlive the stop's signal, and a per-image deadline
that kills a wedged worker and fails only that image."""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio

from service.images.cpu import open_cpu_runner
from service.images.steps import ImageFailedError, Processed


def _signalled_then_done(src: str, dst: str) -> Processed:
    """As when Ctrl-C or a SIGTERM to the process group reaches the worker mid-image."""
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.1)
    return Processed(1, 1, 0, b"", "image/png")


def _wedged(src: str, dst: str) -> Processed:
    time.sleep(3600)  # a codec that never returns
    return Processed(1, 1, 0, b"", "image/png")


async def test_a_worker_process_ignores_the_signals_that_stop_the_run() -> None:
    async with open_cpu_runner("processes", 1) as cpu:
        with trio.fail_after(60):
            assert (await cpu(_signalled_then_done, "a", "b")).width == 1


async def test_an_image_over_its_cpu_deadline_fails_and_its_worker_is_killed() -> None:
    # The deadline also covers starting a fresh worker (1-2 s, more on a busy machine).
    async with open_cpu_runner("processes", 1, timeout_s=8.0) as cpu:
        with trio.fail_after(60):
            start = trio.current_time()
            with pytest.raises(ImageFailedError, match="longer than 8 s"):
                await cpu(_wedged, "a", "b")
            assert trio.current_time() - start < 20
            # The runner still works: a new worker replaces the killed one.
            assert (await cpu(_signalled_then_done, "a", "b")).width == 1
