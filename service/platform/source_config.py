"""Which sources the fan-out reads: the three demo tables, or a TOML file of sources."""

from __future__ import annotations

import enum
import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .redact import short_repr

__all__ = [
    "DEMO_URL_VARIABLES",
    "MAX_BODY_BYTES",
    "MAX_TIMEOUT_S",
    "PG_MAX_MS",
    "SettingsError",
    "SourceKind",
    "SourceSettings",
    "SourcesFile",
    "check_dsn",
    "default_sources",
    "load_sources_file",
    "reject_control_characters",
]

# Used with fullmatch: "$" would also match before a trailing newline.
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: PostgreSQL's timeout settings are int32 milliseconds.
PG_MAX_MS = 2**31 - 1
#: The longest deadline, in seconds: its statement_timeout (deadline + 1 s) must fit PG_MAX_MS.
MAX_TIMEOUT_S = float((PG_MAX_MS - 1000) // 1000)
#: The largest body an HTTP source may be allowed (1 GiB; parsing costs ~15 ms/MiB).
MAX_BODY_BYTES = 1024**3


class SettingsError(ValueError):
    """The configuration holds a setting the service cannot use; the message names it."""


class SourceKind(enum.Enum):
    """How a source is read."""

    ORM = "orm"  # a PostgreSQL table through the SQLAlchemy ORM
    SQL = "sql"  # a PostgreSQL table with raw SQL on triopg
    HTTP = "http"  # a URL serving a JSON array of {id, name}

    @property
    def is_postgres(self) -> bool:
        """True for the kinds that read a PostgreSQL table."""
        return self is not SourceKind.HTTP


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """One source: a PostgreSQL table (``dsn`` + ``table``) or an HTTP JSON ``url``."""

    name: str
    kind: SourceKind
    dsn: str | None = None
    table: str | None = None
    url: str | None = None
    timeout_s: float | None = None
    follow_redirects: bool = False
    max_body_bytes: int | None = None

    def __post_init__(self) -> None:
        where = f"source {short_repr(self.name)}"
        for key, value in (
            ("name", self.name),
            ("table", self.table),
            ("dsn", self.dsn),
            ("url", self.url),
        ):
            if value is not None:
                reject_control_characters(value, f"{where}: {key}")
        if not _TOKEN.fullmatch(self.name):
            raise SettingsError(f"{where}: name must be a token ([A-Za-z0-9_.-]+)")
        if self.timeout_s is not None and not (
            math.isfinite(self.timeout_s) and 0 < self.timeout_s <= MAX_TIMEOUT_S
        ):
            raise SettingsError(
                f"{where}: timeout_s must be a finite number > 0 and <= {MAX_TIMEOUT_S:.0f}"
                " (PostgreSQL's timeouts are int32 milliseconds)"
            )
        if self.max_body_bytes is not None and not 1 <= self.max_body_bytes <= MAX_BODY_BYTES:
            raise SettingsError(f"{where}: max_body_bytes must be >= 1 and <= {MAX_BODY_BYTES}")
        if self.kind.is_postgres:
            if self.table is None or not _IDENTIFIER.fullmatch(self.table):
                raise SettingsError(f"{where}: table must be a plain SQL identifier")
            if self.dsn is not None:
                check_dsn(self.dsn, where)
            if self.url is not None:
                raise SettingsError(f"{where}: a {self.kind.value} source takes a dsn, not a url")
        else:
            try:
                parts = urlsplit(self.url or "")
                _ = parts.port  # raises for a port that is not a number or out of range
            except ValueError as exc:
                raise SettingsError(f"{where}: url is not a valid URL ({exc})") from None
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError(f"{where}: url must be an absolute http(s) URL")
            if self.dsn is not None or self.table is not None:
                raise SettingsError(f"{where}: an http source takes a url, not a dsn or table")


def check_dsn(dsn: str, where: str) -> None:
    """A PostgreSQL URL: ``postgresql://user:password@host:port/database?...``."""
    try:
        url = make_url(dsn)
        port = url.port
    except (ArgumentError, ValueError) as exc:
        raise SettingsError(f"{where}: dsn is not a database URL ({exc})") from None
    if port is not None and not 1 <= port <= 65535:
        raise SettingsError(f"{where}: dsn port must be 1-65535, got {port}")
    # No "+driver": the raw-SQL sources hand the DSN to asyncpg, which takes only these two.
    if url.drivername not in ("postgresql", "postgres"):
        raise SettingsError(
            f"{where}: dsn must be a postgresql:// URL (or postgres://, with no +driver),"
            f" got {short_repr(url.drivername)}"
        )


def reject_control_characters(value: str, what: str) -> None:
    """Raise a :class:`SettingsError` naming ``what`` if ``value`` holds a control character.

    A newline in a source name breaks the Server-Timing header (every answer a 500); in a
    table name or URL it splits log lines. No setting needs one.
    """
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise SettingsError(
                f"{what} must not contain control characters (found {char!r} at {position})"
            )


#: The three demo sources: table, how it is read, and the env var that can move it elsewhere.
_DEMO_SOURCES: tuple[tuple[str, SourceKind, str], ...] = (
    ("data_1", SourceKind.ORM, "DATA_1_URL"),
    ("data_2", SourceKind.SQL, "DATA_2_URL"),
    ("data_3", SourceKind.SQL, "DATA_3_URL"),
)
#: The variables that can move a demo table to another database.
DEMO_URL_VARIABLES = tuple(url_var for _, _, url_var in _DEMO_SOURCES)


def default_sources(env: Mapping[str, str]) -> tuple[SourceSettings, ...]:
    """The demo tables ``data_1`` (ORM), ``data_2`` and ``data_3`` (raw SQL)."""
    database_url = env.get("DATABASE_URL") or None
    sources = []
    for name, kind, url_var in _DEMO_SOURCES:
        variable = url_var if env.get(url_var) else "DATABASE_URL"
        try:
            sources.append(
                SourceSettings(name, kind, dsn=env.get(url_var) or database_url, table=name)
            )
        except SettingsError as exc:
            raise SettingsError(f"{variable}: {exc}") from None
    return tuple(sources)


_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "kind": str,
    "dsn": str,
    "table": str,
    "url": str,
    "timeout_s": (int, float),
    "follow_redirects": bool,
    "max_body_bytes": int,
}


@dataclass(frozen=True, slots=True)
class SourcesFile:
    """What a sources file declares: the sources, and whether the service serves the
    demo's static JSON files (``serve_demo_files = true``, for a demo whose HTTP sources
    are the service itself)."""

    sources: tuple[SourceSettings, ...]
    serve_demo_files: bool = False


def load_sources_file(path: Path, env: Mapping[str, str]) -> SourcesFile:
    """Read the ``[[source]]`` entries (and options) of the TOML file at ``path``.

    A PostgreSQL source without a ``dsn`` reads from ``DATABASE_URL`` (or the
    embedded database). Unknown keys are errors, so a typo cannot go unnoticed.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"SOURCES_FILE {path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"SOURCES_FILE {path}: not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"SOURCES_FILE {path}: not valid TOML ({exc})") from exc
    unknown_top = set(document) - {"source", "serve_demo_files"}
    if unknown_top:
        raise SettingsError(f"SOURCES_FILE {path}: unknown top-level keys {sorted(unknown_top)}")
    serve_demo_files = document.get("serve_demo_files", False)
    if not isinstance(serve_demo_files, bool):
        raise SettingsError(f"SOURCES_FILE {path}: serve_demo_files must be true or false")
    entries = document.get("source")
    if not isinstance(entries, list) or not entries:
        raise SettingsError(f"SOURCES_FILE {path}: needs at least one [[source]] entry")
    database_url = env.get("DATABASE_URL") or None
    sources = tuple(
        _source_from_entry(entry, f"SOURCES_FILE {path}, [[source]] #{index}", database_url)
        for index, entry in enumerate(entries, start=1)
    )
    return SourcesFile(sources, serve_demo_files)


def _source_from_entry(entry: Any, where: str, database_url: str | None) -> SourceSettings:
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: must be a table")
    for key, value in entry.items():
        expected = _KEYS.get(key)
        if expected is None:
            raise SettingsError(
                f"{where}: unknown key {short_repr(key)} (known: {', '.join(_KEYS)})"
            )
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise SettingsError(f"{where}: {key} has the wrong type ({type(value).__name__})")
        if isinstance(value, str):
            reject_control_characters(value, f"{where}: {key}")
    for key in ("name", "kind"):
        if key not in entry:
            raise SettingsError(f"{where}: {key} is required")
    try:
        kind = SourceKind(entry["kind"])
    except ValueError:
        kinds = ", ".join(kind.value for kind in SourceKind)
        raise SettingsError(f"{where}: kind must be one of {kinds}") from None
    dsn = entry.get("dsn")
    if kind.is_postgres and dsn is None and database_url is not None:
        # Checked here so that the message names the variable the DSN came from.
        reject_control_characters(database_url, "DATABASE_URL")
        check_dsn(database_url, "DATABASE_URL")
        dsn = database_url
    try:
        return SourceSettings(
            name=entry["name"],
            kind=kind,
            dsn=dsn,
            table=entry.get("table"),
            url=entry.get("url"),
            timeout_s=float(entry["timeout_s"]) if "timeout_s" in entry else None,
            follow_redirects=entry.get("follow_redirects", False),
            max_body_bytes=entry.get("max_body_bytes"),
        )
    except SettingsError as exc:
        raise SettingsError(f"{where}: {exc}") from None
