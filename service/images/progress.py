"""The progress bar (rich): images done this run against the images left, with the rate and
the time remaining. The total is known once a second, metadata-only walk has counted the
tree (it runs beside the pipeline; until then the bar shows how many it has found)."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["NullProgress", "ProgressView", "RichProgress"]


class ProgressView(Protocol):
    def update(self, *, done: int, left_total: int | None, found: int) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    """No bar (output is not a terminal)."""

    def update(self, *, done: int, left_total: int | None, found: int) -> None:
        pass

    def close(self) -> None:
        pass


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(
            "? img/s" if speed is None else f"{speed:,.1f} img/s", style="progress.data.speed"
        )


class RichProgress:
    """A rich bar on stderr, redrawn by rich's own thread a few times a second."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            refresh_per_second=4,
            speed_estimate_period=60.0,
        )
        self._task = self._progress.add_task("images", total=None)
        self._progress.start()

    def update(self, *, done: int, left_total: int | None, found: int) -> None:
        description = "images" if left_total is not None else f"images (counting: {found:,})"
        self._progress.update(self._task, completed=done, total=left_total, description=description)

    def close(self) -> None:
        self._progress.stop()
