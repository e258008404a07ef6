"""The pipeline on fakes: every image once, failures recorded and the run going on, a stop
in the middle and a rerun that does no image twice, and memory that stays flat."""

from __future__ import annotations

import functools
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from service.images.cpu import open_cpu_runner
from service.images.journal import Journal, Record
from service.images.pipeline import WALK_BATCH, Control, Stages, WorkerDiedError, run_pipeline
from service.images.remote import FakeRemote, RetryPolicy
from service.images.stats import Counters
from service.images.steps import Processed, process_file
from service.images.walk import Entry, SyntheticTree, os_lister
from tests.support.image_samples import make_tree


def _stages(src: Path, dst: Path, journal: Journal, cpu: object, **kwargs: object) -> Stages:
    settings: dict[str, object] = {
        "src": str(src),
        "dst": str(dst),
        "lister": os_lister(str(src)),
        "journal": journal,
        "processor": functools.partial(process_file, max_size=(32, 32), rotate_deg=0.0),
        "cpu": cpu,
        "workers": 2,
        "concurrency": 4,
        "retry_policy": RetryPolicy(attempts=3, deadline_s=1.0, backoff_s=0.01),
    }
    settings.update(kwargs)
    return Stages(**settings)  # type: ignore[arg-type]


async def test_every_image_is_processed_once_and_recorded(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 12)
    remote = FakeRemote(answer='{"label": "cat"}')
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    counters = Counters(started_at=trio.current_time())
    async with open_cpu_runner("threads", 2) as cpu:
        done = await run_pipeline(
            _stages(src, dst, journal, cpu, remote=remote), counters, Control()
        )
    assert done
    assert remote.calls == dict.fromkeys(made, 1)
    assert (counters.ok, counters.failed, counters.skipped) == (12, 0, 0)
    record = journal.get(made[0])
    assert record is not None
    assert record.status == "ok"
    assert record.remote == '{"label": "cat"}'
    assert record.output is not None
    assert (dst / record.output).is_file()
    assert (record.width, record.height) == (32, 24)
    journal.close()


async def test_a_corrupt_image_is_recorded_as_failed_and_the_run_goes_on(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 6)
    (src / "f0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    counters = Counters(started_at=trio.current_time())
    async with open_cpu_runner("threads", 2) as cpu:
        assert await run_pipeline(_stages(src, dst, journal, cpu), counters, Control())
    assert (counters.ok, counters.failed) == (6, 1)
    broken = journal.get("f0/broken.png")
    assert broken is not None
    assert broken.status == "failed"
    assert broken.error
    assert all(journal.get(rel) is not None for rel in made)
    journal.close()


async def test_without_a_remote_the_answer_is_null(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 2)
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    counters = Counters(started_at=trio.current_time())
    async with open_cpu_runner("threads", 1) as cpu:
        await run_pipeline(_stages(src, dst, journal, cpu, remote=None), counters, Control())
    record = journal.get(made[0])
    assert record is not None
    assert record.status == "ok"
    assert record.remote is None
    journal.close()


async def test_a_remote_that_keeps_failing_fails_only_its_images(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, 3)
    remote = FakeRemote(failures=3)  # the first image's three attempts all fail
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    counters = Counters(started_at=trio.current_time())
    async with open_cpu_runner("threads", 1) as cpu:
        await run_pipeline(
            _stages(src, dst, journal, cpu, remote=remote, concurrency=1), counters, Control()
        )
    assert (counters.ok, counters.failed, counters.remote_failed) == (2, 1, 1)
    assert counters.retries == 2
    journal.close()


async def test_a_stopped_run_resumes_and_does_no_image_twice(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 40)
    remote = FakeRemote(delay_s=0.01)
    path = str(tmp_path / "journal.sqlite3")

    journal = Journal(path, commit_every=1000, commit_interval_s=3600)
    counters = Counters(started_at=trio.current_time())
    control = Control()

    def stop_after_five(record: Record) -> None:
        if counters.done == 5:
            control.stop()

    async with open_cpu_runner("threads", 2) as cpu:
        stages = _stages(src, dst, journal, cpu, remote=remote, capacity=2)
        assert not await run_pipeline(stages, counters, control, stop_after_five)
    journal.close()
    first_run = counters.done
    assert 5 <= first_run < 40  # the images in flight were finished, the rest left

    journal = Journal(path)
    counters = Counters(started_at=trio.current_time())
    async with open_cpu_runner("threads", 2) as cpu:
        assert await run_pipeline(
            _stages(src, dst, journal, cpu, remote=remote), counters, Control()
        )
    assert counters.skipped == first_run
    assert counters.done == 40 - first_run
    assert remote.calls == dict.fromkeys(made, 1)
    journal.close()


async def test_an_aborted_run_keeps_what_reached_the_journal(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, 30)
    path = str(tmp_path / "journal.sqlite3")
    journal = Journal(path, commit_every=1000, commit_interval_s=3600)
    counters = Counters(started_at=trio.current_time())
    control = Control()

    def abort_after_three(record: Record) -> None:
        if counters.done == 3:
            control.abort()

    async with open_cpu_runner("threads", 2) as cpu:
        assert not await run_pipeline(
            _stages(src, dst, journal, cpu), counters, control, abort_after_three
        )
    del journal  # not closed: as if the process died right after the cancellation
    again = Journal(path)
    assert len(again.finished_among(make_tree(tmp_path / "names", 30))) == counters.done
    again.close()


def _fake_processor(src: str, dst: str) -> Processed:
    return Processed(1, 1, 0, b"", "image/jpeg")


class StallingCpu:
    """An instant CPU stage that stalls for ``stall_s`` at the start, as a slow downstream
    would: without back-pressure the walk would run through the whole tree meanwhile and
    every walked path would wait in memory."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.until: float | None = None

    async def __call__(self, processor: object, src: str, dst: str) -> Processed:
        if self.until is None:
            self.until = trio.current_time() + self.stall_s
        await trio.sleep_until(self.until)
        return _fake_processor(src, dst)


async def _pipeline_peak_bytes(tmp_path: Path, files: int, stall_s: float) -> int:
    journal = Journal(str(tmp_path / f"journal-{files}.sqlite3"))
    counters = Counters(started_at=trio.current_time())
    tracemalloc.start()
    try:
        stages = Stages(
            src="/nonexistent",
            dst=os.fspath(tmp_path),
            lister=SyntheticTree(files, fanout=100),
            journal=journal,
            processor=_fake_processor,
            cpu=StallingCpu(stall_s),
            workers=4,
        )
        await run_pipeline(stages, counters, Control())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        journal.close()
    assert counters.ok == files
    return peak


@pytest.mark.parametrize(
    ("small_files", "large_files"),
    [(2_000, 20_000), pytest.param(10_000, 100_000, marks=pytest.mark.slow)],
)
async def test_pipeline_memory_is_flat_as_the_tree_grows(
    tmp_path: Path, small_files: int, large_files: int
) -> None:
    small = await _pipeline_peak_bytes(tmp_path, small_files, stall_s=0.5)
    large = await _pipeline_peak_bytes(tmp_path, large_files, stall_s=3.0)
    # Holding 100k paths alone would be about 9 MB (20k: 1.8 MB); the pipeline holds the
    # few hundred in its channels and the walker's batch.
    assert large < 1_000_000
    assert large < 1.3 * small + 100_000


async def _instant_cpu(processor: object, src: str, dst: str) -> Processed:
    return _fake_processor(src, dst)


async def _wait_until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(20):
        while not condition():  # noqa: ASYNC110 (polls state the fakes change, no event)
            await trio.sleep(0.01)


async def test_an_aborted_run_is_not_complete_even_when_the_walk_had_ended(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, 3)
    remote = FakeRemote(failures=100, hang=True)
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    control = Control()
    stages = _stages(src, dst, journal, _instant_cpu, remote=remote)
    completed: list[bool] = []

    async def run() -> None:
        completed.append(await run_pipeline(stages, Counters(0.0), control))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await _wait_until(lambda: len(remote.calls) == 3)  # all walked, all hanging
        control.abort()
    assert completed == [False]
    journal.close()


async def test_after_a_stop_queued_images_are_not_sent_to_the_remote(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, 20)
    remote = FakeRemote(delay_s=0.3)
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    control = Control()
    counters = Counters(0.0)
    stages = _stages(src, dst, journal, _instant_cpu, remote=remote, concurrency=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_pipeline, stages, counters, control)
        await _wait_until(lambda: len(remote.calls) == 1)
        control.stop()
    # Only the call in flight finished; the queued images are left for the rerun.
    assert sum(remote.calls.values()) == 1
    assert journal.counts() == {"ok": 1}
    journal.close()


async def test_a_worker_killed_by_the_stop_leaves_its_image_undone(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, 4)
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    control = Control()

    async def dying_cpu(processor: object, src: str, dst: str) -> Processed:
        await _wait_until(lambda: control.stopped)
        raise WorkerDiedError("the worker process died")

    counters = Counters(0.0)
    stages = _stages(src, dst, journal, dying_cpu)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_pipeline, stages, counters, control)
        await trio.sleep(0.2)
        control.stop()
    assert journal.counts() == {}
    assert counters.failed == 0
    journal.close()


async def test_a_bad_entry_is_recorded_failed_and_an_unreadable_directory_counted(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 6)
    (src / "f0" / "loop.jpg").symlink_to("loop.jpg")
    real = os_lister(str(src))

    def lister(rel: str) -> Iterator[Entry]:
        if rel == "f1":
            raise PermissionError(13, "Permission denied", rel)
        yield from real(rel)

    journal = Journal(str(tmp_path / "journal.sqlite3"))
    counters = Counters(0.0)
    async with open_cpu_runner("threads", 2) as cpu:
        assert await run_pipeline(
            _stages(src, dst, journal, cpu, lister=lister), counters, Control()
        )
    bad = journal.get("f0/loop.jpg")
    assert bad is not None
    assert bad.status == "failed"
    assert bad.error is not None
    assert "symbolic links" in bad.error
    assert counters.unreadable_dirs == 1
    assert (counters.ok, counters.failed) == (len([r for r in made if r[:2] != "f1"]), 1)
    assert counters.snapshot(1.0)["unreadable_dirs"] == 1
    journal.close()


async def test_a_remote_outage_pauses_the_run_and_fails_no_image(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 10)
    remote = FakeRemote(failures=100)  # an outage of 100 attempts
    journal = Journal(str(tmp_path / "journal.sqlite3"))
    counters = Counters(0.0)
    stages = _stages(
        src, dst, journal, _instant_cpu, remote=remote, breaker_threshold=4, max_probe_interval_s=5
    )
    assert await run_pipeline(stages, counters, Control())
    assert (counters.ok, counters.failed, counters.remote_failed) == (10, 0, 0)
    assert set(remote.calls) == set(made)
    journal.close()


async def test_a_stalled_pipeline_over_100k_entries_walks_only_what_fits_its_channels(
    tmp_path: Path,
) -> None:
    """Bounded memory for a 100k-entry synthetic tree, in about two seconds: with the CPU
    stage stalled, the walk stops after the channels' few dozen images and one batch."""
    tree = SyntheticTree(100_000, fanout=100)
    walked = 0

    def counting(rel: str) -> Iterator[Entry]:
        nonlocal walked
        for entry in tree(rel):
            walked += not entry.is_dir
            yield entry

    journal = Journal(str(tmp_path / "journal.sqlite3"))
    control = Control()
    stages = Stages(
        src="/nonexistent",
        dst=os.fspath(tmp_path),
        lister=counting,
        journal=journal,
        processor=_fake_processor,
        cpu=StallingCpu(3600.0),
        workers=4,
    )
    tracemalloc.start()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_pipeline, stages, Counters(0.0), control)
            await trio.sleep(1.5)  # long enough to walk all 100k without back-pressure
            _, peak = tracemalloc.get_traced_memory()
            control.abort()
    finally:
        tracemalloc.stop()
        journal.close()
    # Channels of 8 + 4 tasks + one 256-path batch + the listing of the current directory.
    assert walked <= 2 * WALK_BATCH + 100
    assert peak < 500_000  # 100k paths held would be about 9 MB
