"""One frozen settings object, built once from the environment and passed explicitly."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .rate_limits import Rate
from .redact import short_repr
from .source_config import (
    DEMO_URL_VARIABLES,
    MAX_BODY_BYTES,
    MAX_TIMEOUT_S,
    PG_MAX_MS,
    SettingsError,
    SourceKind,
    SourceSettings,
    check_dsn,
    default_sources,
    load_sources_file,
    reject_control_characters,
)

__all__ = ["Settings", "SettingsError", "SourceKind", "SourceSettings"]


#: ``REGISTER_RATE_LIMIT``'s default.
DEFAULT_REGISTER_RATE = Rate(10, 60.0)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment. See docs/configuration.md."""

    sources: tuple[SourceSettings, ...]
    source_timeout_s: float = 2.0
    pool_max_size: int = 10
    #: None: each PostgreSQL source gets its own timeout + 1 s.
    statement_timeout_ms: int | None = None
    connection_check_interval_ms: int = 250
    #: 1 MiB: parsing and merging a body is CPU work the deadline cannot interrupt (~15 ms/MiB).
    http_max_body_bytes: int = 1024 * 1024
    http_max_connections: int = 100
    embedded_pg_dir: Path = Path(".pgdata")
    shutdown_grace_s: float = 5.0
    log_level: str = "INFO"
    coalesce_requests: bool = False
    #: Fan-outs in flight per worker (0: no limit); see docs/overload.md.
    admission_limit: int = 32
    #: Requests waiting for admission per worker, at most; the rest are shed at once.
    admission_queue: int = 32
    #: How long a request may wait for admission before it is shed (503).
    admission_max_wait_s: float = 0.03
    #: Serve the demo's static JSON files under /demo/ (a sources file's serve_demo_files).
    serve_demo_files: bool = False
    #: The application database (accounts); None: the pages that need it say so.
    database_url: str | None = None
    #: Signs session cookies; None: a key for this app only (tests). ``serve`` always sets one.
    secret_key: str | None = None
    #: Session cookies only over HTTPS (turn on behind TLS; plain-http demos need it off).
    cookie_secure: bool = False
    #: Where the service keeps its own files (the generated SECRET_KEY, the tasks' images).
    data_dir: Path = Path(".data")
    #: Where the task API keeps its images; None: ``images`` in ``data_dir``.
    images_dir: Path | None = None
    #: The largest image the task API accepts, in bytes (decoded).
    max_image_bytes: int = 10 * 1024 * 1024
    #: The most pixels an image may have (decompression bombs are refused before decoding).
    max_image_pixels: int = 40_000_000
    #: The most frames (an animation) or pages (a TIFF) an image may have: each one costs
    #: decoder time however small it is (300,000 frames of 1x1 pixels fit in 4.5 MB).
    max_image_frames: int = 1000
    #: The most scans a JPEG picture may have: each one is a pass of the decoder over every
    #: block, and a scan can be a few bytes (real progressive JPEGs have about 10).
    max_jpeg_scans: int = 100
    #: Redis (the response cache, notices between workers); None: ``serve`` starts an
    #: embedded Redis-compatible server (valkey) in ``DATA_DIR``/valkey.
    redis_url: str | None = None
    #: The Stack Exchange search's ini file; None: the shipped ``search.ini``.
    search_config: Path | None = None
    #: Registrations per client address (each costs an argon2 hash), across workers.
    register_rate_limit: Rate = DEFAULT_REGISTER_RATE
    #: Leeway for the expiry of the auth API's access tokens (clocks of several hosts apart);
    #: 0: a token lives exactly its lifetime (its issuer and verifier are this service).
    access_token_leeway_s: float = 0.0
    #: A refresh token presented again within this long of its spending lost a race with
    #: the request that spent it (401, nothing revoked); later it is reuse (its log-in ends).
    refresh_reuse_grace_s: float = 5.0

    def __post_init__(self) -> None:
        # The statement timeout (deadline + 1 s) and the other PostgreSQL timeouts are int32 ms.
        if not (
            math.isfinite(self.source_timeout_s) and 0 < self.source_timeout_s <= MAX_TIMEOUT_S
        ):
            raise SettingsError(
                f"SOURCE_TIMEOUT_S must be a finite number > 0 and <= {MAX_TIMEOUT_S:.0f}"
                " (PostgreSQL's timeouts are int32 milliseconds)"
            )
        _check_range("POOL_MAX_SIZE", self.pool_max_size, 1, MAX_POOL_SIZE)
        if self.statement_timeout_ms is not None:
            _check_range("STATEMENT_TIMEOUT_MS", self.statement_timeout_ms, 1, PG_MAX_MS)
        _check_range(
            "CONNECTION_CHECK_INTERVAL_MS", self.connection_check_interval_ms, 0, PG_MAX_MS
        )
        _check_range("HTTP_MAX_BODY_BYTES", self.http_max_body_bytes, 1, MAX_BODY_BYTES)
        _check_range("HTTP_MAX_CONNECTIONS", self.http_max_connections, 1, MAX_HTTP_CONNECTIONS)
        if not (math.isfinite(self.shutdown_grace_s) and self.shutdown_grace_s >= 0):
            raise SettingsError("SHUTDOWN_GRACE_S must be a finite number >= 0")
        _check_range("ADMISSION_LIMIT", self.admission_limit, 0, MAX_ADMISSION)
        _check_range("ADMISSION_QUEUE", self.admission_queue, 0, MAX_ADMISSION)
        if not (math.isfinite(self.admission_max_wait_s) and 0 <= self.admission_max_wait_s <= 60):
            raise SettingsError("ADMISSION_MAX_WAIT_S must be a number from 0 to 60")
        _check_range("MAX_IMAGE_BYTES", self.max_image_bytes, 1, MAX_IMAGE_BYTES)
        _check_range("MAX_IMAGE_PIXELS", self.max_image_pixels, 1, MAX_IMAGE_PIXELS)
        _check_range("MAX_IMAGE_FRAMES", self.max_image_frames, 1, MAX_IMAGE_FRAMES)
        _check_range("MAX_JPEG_SCANS", self.max_jpeg_scans, 1, MAX_JPEG_SCANS)
        if not (
            math.isfinite(self.access_token_leeway_s) and 0 <= self.access_token_leeway_s <= 300
        ):
            raise SettingsError("ACCESS_TOKEN_LEEWAY_S must be a number from 0 to 300")
        if not (
            math.isfinite(self.refresh_reuse_grace_s) and 0 <= self.refresh_reuse_grace_s <= 60
        ):
            raise SettingsError("REFRESH_REUSE_GRACE_S must be a number from 0 to 60")
        if self.secret_key is not None and len(self.secret_key.encode()) < 32:
            raise SettingsError("SECRET_KEY must have at least 32 bytes (it signs HS256 tokens)")
        if self.log_level not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise SettingsError(f"source names must be unique, got {names}")

    @property
    def embedded_redis_dir(self) -> Path:
        """Where ``serve`` runs the embedded Redis when no ``REDIS_URL`` is set."""
        return self.data_dir / "valkey"

    @property
    def needs_embedded_database(self) -> bool:
        """True without ``DATABASE_URL`` (the accounts need a database) or when a PostgreSQL
        source has no DSN: ``serve`` then runs an embedded PostgreSQL."""
        return self.database_url is None or any(
            source.kind.is_postgres and source.dsn is None for source in self.sources
        )

    @property
    def images_path(self) -> Path:
        """The task API's image directory: ``IMAGES_DIR``, else ``images`` in the data dir."""
        return self.images_dir if self.images_dir is not None else self.data_dir / "images"

    def timeout_for(self, source: SourceSettings) -> float:
        """The deadline of ``source``, in seconds: its own, or ``source_timeout_s``."""
        return source.timeout_s if source.timeout_s is not None else self.source_timeout_s

    def source_timeouts(self) -> dict[str, float]:
        """The sources that have a timeout of their own, by name."""
        return {s.name: s.timeout_s for s in self.sources if s.timeout_s is not None}

    def statement_timeout_ms_for(self, source: SourceSettings) -> int:
        """The server-side ``statement_timeout`` for ``source``: a little past its deadline."""
        if self.statement_timeout_ms is not None:
            return self.statement_timeout_ms
        return int(self.timeout_for(source) * 1000) + 1000

    def max_body_bytes_for(self, source: SourceSettings) -> int:
        """The largest HTTP body ``source`` may send."""
        if source.max_body_bytes is not None:
            return source.max_body_bytes
        return self.http_max_body_bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        for variable in _VARIABLES:
            reject_control_characters(env.get(variable) or "", variable)
        sources_file = Path(env["SOURCES_FILE"]) if env.get("SOURCES_FILE") else None
        serve_demo_files = False
        if sources_file is not None:
            declared = load_sources_file(sources_file, env)
            sources, serve_demo_files = declared.sources, declared.serve_demo_files
        else:
            sources = default_sources(env)
        statement_ms = (env.get("STATEMENT_TIMEOUT_MS") or "").strip()
        database_url = env.get("DATABASE_URL") or None
        if database_url is not None:
            check_dsn(database_url, "DATABASE_URL")
        redis_url = (env.get("REDIS_URL") or "").strip() or None
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "REDIS_URL must start with redis://, rediss:// or unix://,"
                f" got {short_repr(redis_url)}"
            )
        return cls(
            sources=sources,
            source_timeout_s=_number(env, "SOURCE_TIMEOUT_S", 2.0),
            pool_max_size=int(_number(env, "POOL_MAX_SIZE", 10, integer=True)),
            statement_timeout_ms=(
                int(_number(env, "STATEMENT_TIMEOUT_MS", 0, integer=True)) if statement_ms else None
            ),
            connection_check_interval_ms=int(
                _number(env, "CONNECTION_CHECK_INTERVAL_MS", 250, integer=True)
            ),
            http_max_body_bytes=int(_number(env, "HTTP_MAX_BODY_BYTES", 1024 * 1024, integer=True)),
            http_max_connections=int(_number(env, "HTTP_MAX_CONNECTIONS", 100, integer=True)),
            embedded_pg_dir=Path(env.get("EMBEDDED_PG_DIR") or ".pgdata"),
            shutdown_grace_s=_number(env, "SHUTDOWN_GRACE_S", 5.0),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            coalesce_requests=_flag(env, "COALESCE_REQUESTS", False),
            admission_limit=int(_number(env, "ADMISSION_LIMIT", 32, integer=True)),
            admission_queue=int(_number(env, "ADMISSION_QUEUE", 32, integer=True)),
            admission_max_wait_s=_number(env, "ADMISSION_MAX_WAIT_S", 0.03),
            serve_demo_files=serve_demo_files,
            database_url=database_url,
            secret_key=env.get("SECRET_KEY") or None,
            cookie_secure=_flag(env, "COOKIE_SECURE", False),
            data_dir=Path(env.get("DATA_DIR") or ".data"),
            images_dir=Path(env["IMAGES_DIR"]) if env.get("IMAGES_DIR") else None,
            max_image_bytes=int(_number(env, "MAX_IMAGE_BYTES", 10 * 1024 * 1024, integer=True)),
            max_image_pixels=int(_number(env, "MAX_IMAGE_PIXELS", 40_000_000, integer=True)),
            max_image_frames=int(_number(env, "MAX_IMAGE_FRAMES", 1000, integer=True)),
            max_jpeg_scans=int(_number(env, "MAX_JPEG_SCANS", 100, integer=True)),
            redis_url=redis_url,
            search_config=Path(env["SEARCH_CONFIG"]) if env.get("SEARCH_CONFIG") else None,
            register_rate_limit=(
                Rate.parse(env["REGISTER_RATE_LIMIT"], "REGISTER_RATE_LIMIT")
                if (env.get("REGISTER_RATE_LIMIT") or "").strip()
                else DEFAULT_REGISTER_RATE
            ),
            access_token_leeway_s=_number(env, "ACCESS_TOKEN_LEEWAY_S", 0.0),
            refresh_reuse_grace_s=_number(env, "REFRESH_REUSE_GRACE_S", 5.0),
        )


#: Fan-outs in flight (or queued) per worker, at most.
MAX_ADMISSION = 100_000
#: Connections per source and worker: far past any PostgreSQL's max_connections.
MAX_POOL_SIZE = 1000
#: 256 MiB: a decoded image is held in memory (and base64 is a third larger on the wire).
MAX_IMAGE_BYTES = 256 * 1024 * 1024
#: Pillow's own default refuses twice 89 M pixels as a decompression bomb.
MAX_IMAGE_PIXELS = 178_956_970
#: Frames per image, at most: past this an image's frames alone take seconds to decode.
MAX_IMAGE_FRAMES = 100_000
#: Scans per JPEG picture, at most: 10,000 scans of a 40 M pixel picture take minutes.
MAX_JPEG_SCANS = 10_000
#: Connections per HTTP source and worker: each one is a file descriptor.
MAX_HTTP_CONNECTIONS = 10_000

#: Every variable the settings read; none may hold a control character.
_VARIABLES = (
    "SECRET_KEY",
    "COOKIE_SECURE",
    "DATA_DIR",
    "IMAGES_DIR",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_FRAMES",
    "MAX_JPEG_SCANS",
    "REDIS_URL",
    "SEARCH_CONFIG",
    "REGISTER_RATE_LIMIT",
    "ACCESS_TOKEN_LEEWAY_S",
    "REFRESH_REUSE_GRACE_S",
    "SOURCES_FILE",
    "DATABASE_URL",
    *DEMO_URL_VARIABLES,
    "SOURCE_TIMEOUT_S",
    "POOL_MAX_SIZE",
    "STATEMENT_TIMEOUT_MS",
    "CONNECTION_CHECK_INTERVAL_MS",
    "HTTP_MAX_BODY_BYTES",
    "HTTP_MAX_CONNECTIONS",
    "EMBEDDED_PG_DIR",
    "SHUTDOWN_GRACE_S",
    "LOG_LEVEL",
    "COALESCE_REQUESTS",
    "ADMISSION_LIMIT",
    "ADMISSION_QUEUE",
    "ADMISSION_MAX_WAIT_S",
)


def _check_range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise SettingsError(f"{key} must be >= {low} and <= {high}, got {value}")


def _number(env: Mapping[str, str], key: str, default: float, *, integer: bool = False) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw) if integer else float(raw)
    except ValueError:  # also an integer of more digits than int() converts
        kind = "an integer" if integer else "a number"
        raise SettingsError(f"{key} must be {kind}, got {short_repr(raw)}") from None


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(
        f"{key} must be one of 1/0, true/false, yes/no, on/off; got {short_repr(raw)}"
    )
