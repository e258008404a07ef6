"""The docs hold together: every relative link in README.md and docs/*.md points at a file
that exists and, with a ``#fragment``, at a heading of that file (GitHub's anchors), and
every ``docs/<name>.md`` named in the docs or the code exists."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")
# [text](target) and ![alt](target); a target has no spaces (none of ours has a title).
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
DOCS_PATH = re.compile(r"\bdocs/[\w.-]+\.md\b")


def markdown_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1, with code spans blanked."""
    lines: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text, lower case, without punctuation, spaces as
    hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in ``path``; a repeated one gets ``-1``, ``-2``… as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(files: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: target (why)`` for every relative link that does not resolve."""
    broken: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for number, line in prose_lines(text):
            for match in LINK.finditer(CODE_SPAN.sub("", line)):
                target = match.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                file_part, _, fragment = target.partition("#")
                where = f"{path.relative_to(root)}:{number}: {target}"
                linked = (path.parent / file_part).resolve() if file_part else path
                if not linked.exists():
                    broken.append(f"{where} (no such file)")
                elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                    broken.append(f"{where} (no such heading)")
    return broken


def test_every_relative_link_resolves_to_a_file_and_a_heading() -> None:
    assert broken_links(markdown_files()) == []


def test_every_docs_page_named_in_the_docs_or_the_code_exists() -> None:
    named = [*markdown_files(), *ROOT.glob("service/**/*.py"), *ROOT.glob("tests/**/*.py")]
    named += [*ROOT.glob("bench/*.py"), ROOT / "noxfile.py", ROOT / "pyproject.toml"]
    named.remove(Path(__file__).resolve())  # its own example pages below are made up
    missing = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in named
        for name in DOCS_PATH.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / name).exists()
    )
    assert missing == []


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## The `x` rule (fixed)\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#the-x-rule-fixed) [ok](#top) [web](https://example.com/x)\n"
        "# Top\n"
        "[gone](docs/b.md) [no heading](docs/a.md#nope) `[code](docs/c.md)`\n"
        "```\n[fenced](docs/d.md)\n```\n"
    )
    assert broken_links(markdown_files(tmp_path), tmp_path) == [
        "README.md:3: docs/b.md (no such file)",
        "README.md:3: docs/a.md#nope (no such heading)",
    ]
