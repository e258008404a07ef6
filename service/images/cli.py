"""``python -m service images process SRC DST [...]``: the command line of the image batch
pipeline (added to the service's CLI through ``CAPABILITY_COMMANDS``)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

__all__ = ["add_commands", "parse_size"]

#: Exit codes: 0 all done; 1 done, but some images failed (in the journal) or some
#: directories could not be read (skipped); 2 usage or setup error (bad option, SRC/DST
#: refused, DST used by another run, journal made with other options); 3 the run crashed
#: (the disk full, read-only or failing, or a bug: what is recorded stays, rerun to
#: resume); 130 stopped by a signal (rerun to resume).
EXIT_FAILED_IMAGES = 1
EXIT_USAGE = 2
EXIT_CRASHED = 3
EXIT_INTERRUPTED = 130


def parse_size(raw: str) -> tuple[int, int]:
    """``WxH`` (e.g. ``1024x1024``), both at least 1."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*[xX]\s*(\d{1,6})\s*", raw)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise argparse.ArgumentTypeError(f"expected WxH such as 1024x1024, got {raw!r}")
    return int(match[1]), int(match[2])


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {raw!r}") from None
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive, finite number, got {raw!r}")
    return value


def _angle(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected degrees, got {raw!r}") from None
    if value != value or abs(value) == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite angle, got {raw!r}")
    return value


def _url(raw: str) -> str:
    if not re.match(r"https?://[^/\s]+", raw):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {raw!r}")
    return raw


def add_commands(commands: Any) -> None:
    """Add ``images process`` to the service's subcommands."""
    images = commands.add_parser("images", help="the image batch pipeline")
    actions = images.add_subparsers(dest="images_action", required=True)
    process = actions.add_parser(
        "process",
        help="process every image under SRC into DST (rerun to resume)",
        description="Orient, rotate and shrink every image under SRC into DST, call the "
        "remote service with each, hash it, report statistics; resumable through "
        "DST/journal.sqlite3.",
    )
    process.add_argument("src", metavar="SRC", help="the directory tree of images")
    process.add_argument("dst", metavar="DST", help="output directory (and the journal)")
    process.add_argument("--remote-url", type=_url, help="the remote service (step 2)")
    process.add_argument("--stats-url", type=_url, help="where statistics are sent")
    process.add_argument(
        "--workers", type=_positive, default=2, help="CPU workers (default 2, one per core)"
    )
    process.add_argument(
        "--concurrency", type=_positive, default=16, help="remote calls at once (default 16)"
    )
    process.add_argument(
        "--max-size", type=parse_size, default=(1024, 1024), help="fit within WxH (1024x1024)"
    )
    process.add_argument(
        "--rotate", type=_angle, default=0.0, help="extra counter-clockwise rotation, degrees"
    )
    process.add_argument(
        "--cpu",
        choices=("processes", "threads"),
        default="processes",
        help="where the CPU step runs (default: worker processes)",
    )
    process.add_argument(
        "--retry-failed", action="store_true", help="redo the images the journal has as failed"
    )
    process.add_argument(
        "--remote-timeout", type=_seconds, default=10.0, help="seconds per remote attempt (10)"
    )
    process.add_argument(
        "--stats-interval", type=_seconds, default=5.0, help="seconds between reports (5)"
    )
    process.add_argument(
        "--cpu-timeout",
        type=_seconds,
        default=60.0,
        help="seconds one image may take in the CPU step; then it fails (60)",
    )
    process.add_argument(
        "--no-count",
        action="store_true",
        help="do not count the tree for the progress bar's total (saves a second walk)",
    )
    process.set_defaults(run=_process)


def _process(args: argparse.Namespace) -> int:
    import trio

    from .job import JobOptions, JobResult, run_job
    from .journal import JournalError
    from .paths import DirectoryError
    from .progress import ProgressView, RichProgress

    options = JobOptions(
        src=args.src,
        dst=args.dst,
        max_size=args.max_size,
        rotate_deg=args.rotate,
        workers=args.workers,
        concurrency=args.concurrency,
        remote_url=args.remote_url,
        stats_url=args.stats_url,
        cpu=args.cpu,
        retry_failed=args.retry_failed,
        remote_deadline_s=args.remote_timeout,
        stats_interval_s=args.stats_interval,
        cpu_timeout_s=args.cpu_timeout,
        count=not args.no_count,
    )

    def say(message: str) -> None:
        print(f"images: {message}", file=sys.stderr, flush=True)

    progress: ProgressView | None = RichProgress() if sys.stderr.isatty() else None
    started = time.monotonic()
    result: JobResult | None = None
    code = 0
    # Errors from inside the run's nurseries arrive wrapped in ExceptionGroups.
    try:
        result = trio.run(lambda: run_job(options, progress=progress, say=say))
    except* (DirectoryError, JournalError) as group:
        say(f"error: {_first(group)}")
        code = EXIT_USAGE
    except* OSError as group:
        say(f"crashed: cannot write the output: {_first(group)} (what is recorded stays)")
        code = EXIT_CRASHED
    except* Exception as group:
        error = _first(group)
        say(f"crashed: {type(error).__name__}: {error} (what is recorded stays; rerun)")
        code = EXIT_CRASHED
    if result is None:
        return code or EXIT_CRASHED
    elapsed = time.monotonic() - started
    counters = result.counters
    rate = counters.done / elapsed if elapsed > 0 else 0.0
    print(
        f"images: {counters.done} processed this run ({counters.ok} ok, {counters.failed} "
        f"failed), {counters.skipped} skipped as already done; {counters.retries} remote "
        f"retries, {counters.remote_failed} remote failures; {elapsed:.1f} s, "
        f"{rate:.1f} images/s; journal {result.journal_path}",
        flush=True,
    )
    if counters.unreadable_dirs:
        say(f"{counters.unreadable_dirs} directories could not be read and were skipped")
    if not result.completed:
        say("stopped before the end: rerun the same command to resume")
        return EXIT_INTERRUPTED
    if counters.failed:
        say(f"{counters.failed} images failed (status 'failed' in the journal; --retry-failed)")
    if counters.failed or counters.unreadable_dirs:
        return EXIT_FAILED_IMAGES
    return 0


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    """The first leaf error of a (possibly nested) group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, Exception)
    return error
