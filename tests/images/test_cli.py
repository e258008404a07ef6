"""``python -m service images process``: a real run in a subprocess against the fake remote
and stats servers, stopped by a signal in the middle and rerun; bad input."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from service.__main__ import main
from service.images.journal import JOURNAL_NAME, Journal
from tests.support import ROOT
from tests.support.image_samples import make_tree
from tests.support.image_services import ImageServices


def _command(src: Path, dst: Path, services: ImageServices) -> list[str]:
    return [
        sys.executable,
        "-m",
        "service",
        "images",
        "process",
        str(src),
        str(dst),
        "--remote-url",
        services.url("/remote"),
        "--stats-url",
        services.url("/stats"),
        "--workers",
        "2",
        "--concurrency",
        "4",
        "--max-size",
        "32x32",
        "--stats-interval",
        "0.5",
    ]


async def test_a_run_stopped_by_a_signal_resumes_and_does_no_image_twice(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 60)
    services = ImageServices(remote_delay_s=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(services.serve)
        process = await trio.lowlevel.open_process(
            _command(src, dst, services), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        with trio.fail_after(60):
            await services.wait_answered(10)
        process.send_signal(signal.SIGINT)
        with trio.fail_after(60):
            code = await process.wait()
        assert process.stderr is not None
        stderr = (await process.stderr.receive_some(65536)).decode()
        assert code == 130, stderr
        assert "stopping: finishing the images in flight" in stderr
        assert "rerun the same command to resume" in stderr
        first_run = sum(services.answered.values())
        assert 10 <= first_run < 60

        result = await trio.run_process(
            _command(src, dst, services),
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        nursery.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr.decode()
    assert f"{60 - first_run} processed this run" in result.stdout.decode()
    assert f"{first_run} skipped" in result.stdout.decode()
    # Every image reached the remote exactly once over both runs.
    assert services.calls == dict.fromkeys(made, 1)
    journal = Journal(str(dst / JOURNAL_NAME))
    assert journal.counts() == {"ok": 60}
    record = journal.get(made[0])
    assert record is not None
    assert record.output is not None
    assert (dst / record.output).is_file()
    journal.close()
    # Statistics came in batches, each run ending with a final report.
    finals = [report for report in services.reports if report["final"]]
    assert len(finals) == 2
    assert len(services.reports) < 30
    assert finals[-1]["ok"] == 60 - first_run


def test_bad_options_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["images", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--max-size", "big"]
        )
    assert exit_info.value.code == 2
    assert "expected WxH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["images", "process", "a", "b", "--workers", "0"])
    assert "must be at least 1" in capsys.readouterr().err
    assert main(["images", "process", str(tmp_path / "in"), str(tmp_path / "in")]) == 2
    assert "DST must not be SRC" in capsys.readouterr().err


def test_a_run_without_remote_or_stats_records_null_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = make_tree(tmp_path / "in", 3)
    (tmp_path / "in" / "broken.gif").write_bytes(b"GIF89a broken")
    code = main(
        ["images", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--cpu", "threads"]
    )
    assert code == 1  # done, with one image failed
    assert "3 ok, 1 failed" in capsys.readouterr().out
    journal = Journal(str(tmp_path / "out" / JOURNAL_NAME))
    kept = journal.get(made[0])
    assert kept is not None
    assert kept.status == "ok"
    assert kept.remote is None
    journal.close()


@pytest.mark.parametrize("option", ["--stats-interval", "--remote-timeout", "--cpu-timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_durations_must_be_positive_and_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["images", "process", str(tmp_path), str(tmp_path / "out"), f"{option}={value}"])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err


def test_a_crash_inside_the_run_is_one_clear_line_and_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path / "in", 3)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("service.images.job.process_file", disk_full)
    code = main(
        ["images", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--cpu", "threads"]
    )
    err = capsys.readouterr().err
    assert code == 3, err
    assert "crashed: cannot write the output: [Errno 28] No space left on device" in err
    assert "Traceback" not in err


def test_a_second_run_on_the_same_dst_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path / "in", 1)
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / "images.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a run in progress holds it
        code = main(["images", "process", str(tmp_path / "in"), str(tmp_path / "out")])
    assert code == 2
    assert "another run is using this DST" in capsys.readouterr().err
    assert not (tmp_path / "out" / JOURNAL_NAME).exists()


def test_half_written_outputs_of_a_crashed_run_are_removed_and_only_those(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path / "in", 1)
    out = tmp_path / "out"
    (out / "ab" / "cd").mkdir(parents=True)
    (out / "ab" / "cd" / "0123-x.png.partial").write_bytes(b"half")
    (out / "ab" / "cd" / "0123-y.png").write_bytes(b"whole")
    (out / "notes").mkdir()
    (out / "notes" / "mine.partial").write_bytes(b"not ours")
    (out / "images.lock").write_bytes(b"running\n")  # the last run never ended cleanly
    assert main(["images", "process", str(tmp_path / "in"), str(out), "--cpu", "threads"]) == 0
    assert "removed 1 half-written outputs" in capsys.readouterr().err
    assert not (out / "ab" / "cd" / "0123-x.png.partial").exists()
    assert (out / "ab" / "cd" / "0123-y.png").exists()
    assert (out / "notes" / "mine.partial").exists()
    assert list(out.rglob("*.partial")) == [out / "notes" / "mine.partial"]
    # This run ended cleanly: the next one has nothing to clean.
    assert main(["images", "process", str(tmp_path / "in"), str(out), "--cpu", "threads"]) == 0
    assert "half-written" not in capsys.readouterr().err


def test_unreadable_directories_are_reported_and_make_the_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.images import walk

    made = make_tree(tmp_path / "in", 6)

    def lister(root: str, *, exclude: str | None = None) -> walk.Lister:
        real = walk.os_lister(root, exclude=exclude)

        def list_dir(rel: str) -> Iterator[walk.Entry]:
            if rel == "f2":
                raise PermissionError(errno.EACCES, "Permission denied", rel)
            yield from real(rel)

        return list_dir

    monkeypatch.setattr("service.images.job.os_lister", lister)
    code = main(
        ["images", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--cpu", "threads"]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert f"{len([r for r in made if not r.startswith('f2/')])} ok, 0 failed" in captured.out
    assert "1 directories could not be read and were skipped" in captured.err


async def test_a_killed_run_loses_no_finished_image(tmp_path: Path) -> None:
    """SIGKILL (no handler runs, nothing is flushed) while remote calls are in flight: every
    image the remote had answered is in the journal, so the rerun asks the remote about
    none of them again. (The calls in flight at the kill had no answer: they are redone.)"""
    src, dst = tmp_path / "src", tmp_path / "dst"
    made = make_tree(src, 60)
    services = ImageServices(remote_delay_s=0.02, hold_from=12)
    async with trio.open_nursery() as nursery:
        await nursery.start(services.serve)
        process = await trio.lowlevel.open_process(
            _command(src, dst, services),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        with trio.fail_after(60):
            await services.wait_answered(12)
        await trio.sleep(0.5)  # the client takes in the last answers (no answer comes after)
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        held = {name for name, calls in services.calls.items() if services.answered[name] == 0}
        answered_first = services.answered.total()
        assert 1 <= len(held) <= 4  # --concurrency 4

        services.hold_from = None
        result = await trio.run_process(
            _command(src, dst, services), cwd=ROOT, capture_stdout=True, capture_stderr=True
        )
        nursery.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr.decode()
    assert f"{answered_first} skipped as already done" in result.stdout.decode()
    assert services.answered == dict.fromkeys(made, 1)
    assert services.calls == {rel: 2 if rel in held else 1 for rel in made}
