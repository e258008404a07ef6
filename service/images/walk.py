"""The lazy tree walk: image paths under a root, in a deterministic order, one directory's
listing in memory at a time (never a list of every path).

A directory lister is the seam: ``os_lister`` reads a real directory with ``os.scandir``;
``SyntheticTree`` invents a tree of any size without touching the disk, for the memory tests
and the benchmark.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "IMAGE_SUFFIXES",
    "Entry",
    "Lister",
    "SyntheticTree",
    "is_image_name",
    "os_lister",
    "walk_images",
]

#: File name endings taken as images (compared lower-cased).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class Entry:
    """One name in a directory listing; ``error`` says why an image's entry could not be
    examined (a symbolic link loop, a permission): it is then reported, not walked."""

    name: str
    is_dir: bool
    error: str | None = None


#: Lists one directory (a path relative to the root, "" for the root itself).
Lister = Callable[[str], Iterable[Entry]]


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def os_lister(root: str, *, exclude: str | None = None) -> Lister:
    """A lister of the real directory ``root``; ``exclude`` (an absolute, normalised path) is
    a directory left out with everything under it (the output directory when it sits inside
    the input). Symbolic links to directories are not followed (no cycles)."""

    def list_dir(rel: str) -> Iterator[Entry]:
        path = os.path.join(root, rel) if rel else root
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if is_dir and exclude is not None and os.path.abspath(entry.path) == exclude:
                        continue
                    is_file = not is_dir and entry.is_file()  # follows a link to a file
                except OSError as exc:  # one bad entry, not a bad directory
                    if is_image_name(entry.name):
                        yield Entry(entry.name, False, error=exc.strerror or str(exc))
                    continue
                if is_dir or is_file:
                    yield Entry(entry.name, is_dir)

    return list_dir


def walk_images(
    list_dir: Lister,
    on_error: Callable[[str, OSError], None] | None = None,
    on_bad_entry: Callable[[str, str], None] | None = None,
) -> Iterator[str]:
    """Relative paths (``/``-separated) of the images of the tree, depth first, names sorted
    within each directory, so two walks of the same tree give the same order.

    Memory: a stack of the sorted, not yet visited names of each directory on the current
    path; nothing of a directory that is done. An unreadable directory is reported to
    ``on_error`` and skipped; an image entry that cannot be examined is reported to
    ``on_bad_entry`` (its path and why) and not yielded."""
    stack: list[tuple[str, Iterator[Entry]]] = []

    def push(rel: str) -> None:
        try:
            listing = sorted(list_dir(rel), key=_sort_key)
        except OSError as exc:
            if on_error is None:
                raise
            on_error(rel, exc)
            return
        stack.append((rel, iter(listing)))

    push("")
    while stack:
        rel, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.error is not None:
            if on_bad_entry is not None:
                on_bad_entry(path, entry.error)
        elif entry.is_dir:
            push(path)
        elif is_image_name(entry.name):
            yield path


def _sort_key(entry: Entry) -> str:
    return entry.name


@dataclass(frozen=True)
class SyntheticTree:
    """A made-up tree of ``files`` images, ``fanout`` entries per directory, generated on
    demand: the same memory-bounded walk over 1 million or 100 million files with no disk.

    File ``i`` lives at ``dNNN/dNNN/.../iNNNNNNNNN.jpg`` (its number's digits in base
    ``fanout`` name the directories)."""

    files: int
    fanout: int = 1000

    def depth(self) -> int:
        depth, capacity = 0, 1
        while capacity * self.fanout < self.files:
            capacity *= self.fanout
            depth += 1
        return depth

    def __call__(self, rel: str) -> Iterator[Entry]:
        depth = self.depth()
        parts = [int(part[1:]) for part in rel.split("/")] if rel else []
        if len(parts) > depth:
            raise NotADirectoryError(rel)
        # The first file number under this directory, and how many one child holds.
        span = self.fanout ** (depth - len(parts))
        first = 0
        for level, part in enumerate(parts):
            first += part * self.fanout ** (depth - level)
        if len(parts) == depth:
            for number in range(first, min(first + self.fanout, self.files)):
                yield Entry(f"i{number:09d}.jpg", False)
            return
        child_span = span
        for child in range(self.fanout):
            if first + child * child_span >= self.files:
                return
            yield Entry(f"d{child:03d}", True)
