"""One frozen settings object, built once from the environment and passed explicitly."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "SettingsError", "SourceKind", "SourceSettings"]

_TOKEN = re.compile(r"^[A-Za-z0-9_.-]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SettingsError(ValueError):
    """The environment holds a setting the service cannot use; the message names it."""


class SourceKind(enum.Enum):
    """How a source is read."""

    ORM = "orm"  # SQLAlchemy ORM: a declarative mapped class and select() of it
    SQL = "sql"  # raw SQL on triopg


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """One PostgreSQL table source."""

    name: str
    kind: SourceKind
    dsn: str | None
    table: str

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.name):
            raise SettingsError(f"source name {self.name!r} must be a token ([A-Za-z0-9_.-]+)")
        if not _IDENTIFIER.match(self.table):
            raise SettingsError(f"table {self.table!r} must be a plain SQL identifier")


#: The three demo sources: table, how it is read, and the env var that can move it elsewhere.
DEFAULT_SOURCES: tuple[tuple[str, SourceKind, str], ...] = (
    ("data_1", SourceKind.ORM, "DATA_1_URL"),
    ("data_2", SourceKind.SQL, "DATA_2_URL"),
    ("data_3", SourceKind.SQL, "DATA_3_URL"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment. See the README's table."""

    sources: tuple[SourceSettings, ...]
    database_url: str | None = None
    source_timeout_s: float = 2.0
    pool_max_size: int = 10
    statement_timeout_ms: int = 3000
    connection_check_interval_ms: int = 250
    embedded_pg_dir: Path = Path(".pgdata")
    shutdown_grace_s: float = 5.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.source_timeout_s <= 0:
            raise SettingsError("SOURCE_TIMEOUT_S must be > 0")
        if self.pool_max_size < 1:
            raise SettingsError("POOL_MAX_SIZE must be >= 1")
        if self.statement_timeout_ms < 1:
            raise SettingsError("STATEMENT_TIMEOUT_MS must be >= 1")
        if self.connection_check_interval_ms < 0:
            raise SettingsError("CONNECTION_CHECK_INTERVAL_MS must be >= 0")
        if self.shutdown_grace_s < 0:
            raise SettingsError("SHUTDOWN_GRACE_S must be >= 0")
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise SettingsError(f"source names must be unique, got {names}")

    @property
    def needs_embedded_database(self) -> bool:
        """True when some source has no DSN: the demo then runs an embedded PostgreSQL."""
        return any(source.dsn is None for source in self.sources)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        database_url = env.get("DATABASE_URL") or None
        timeout_s = _number(env, "SOURCE_TIMEOUT_S", 2.0)
        default_statement_ms = int(timeout_s * 1000) + 1000
        sources = tuple(
            SourceSettings(
                name=name,
                kind=kind,
                dsn=env.get(url_var) or database_url,
                table=name,
            )
            for name, kind, url_var in DEFAULT_SOURCES
        )
        return cls(
            sources=sources,
            database_url=database_url,
            source_timeout_s=timeout_s,
            pool_max_size=int(_number(env, "POOL_MAX_SIZE", 10, integer=True)),
            statement_timeout_ms=int(
                _number(env, "STATEMENT_TIMEOUT_MS", default_statement_ms, integer=True)
            ),
            connection_check_interval_ms=int(
                _number(env, "CONNECTION_CHECK_INTERVAL_MS", 250, integer=True)
            ),
            embedded_pg_dir=Path(env.get("EMBEDDED_PG_DIR") or ".pgdata"),
            shutdown_grace_s=_number(env, "SHUTDOWN_GRACE_S", 5.0),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )


def _number(env: Mapping[str, str], key: str, default: float, *, integer: bool = False) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise SettingsError(f"{key} must be {kind}, got {raw!r}") from None
