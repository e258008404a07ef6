"""The search's configuration: an ini file (``SEARCH_CONFIG``), read with configparser and
checked, each error naming its key."""

from __future__ import annotations

import configparser
import math
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "SORTABLE_COLUMNS",
    "SearchConfig",
    "SearchConfigError",
    "load_config",
    "parse_config",
]

#: The shipped configuration (the real API): package data of this package.
DEFAULT_CONFIG_FILE: Traversable = files("service.search").joinpath("search.ini")

#: Every column the results table may be sorted by.
SORTABLE_COLUMNS = (
    "title",
    "score",
    "answer_count",
    "view_count",
    "is_answered",
    "owner",
    "creation_date",
    "last_activity_date",
)

#: The API's sort orders for /search.
_API_SORTS = ("activity", "votes", "creation", "relevance")
#: A Stack Exchange site name (the form's rule too): lower-case letters, digits, dots, dashes.
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9_:-]{1,64}")
#: The shortest refresh interval: a shorter one would spend the API's quota on refreshes.
MIN_REFRESH_INTERVAL_S = 10.0


class SearchConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """Every setting of the search (see ``search.ini``)."""

    api_url: str = "https://api.stackexchange.com"
    api_key: str | None = None
    default_site: str = "stackoverflow"
    request_timeout_s: float = 10.0
    #: Results asked of the API per call (its ``pagesize``, at most 100).
    api_page_size: int = 100
    #: The API's ``sort`` and ``order`` of the stored results.
    api_sort: str = "activity"
    api_order: str = "desc"
    #: A backoff longer than this fails a page's request at once (the refresher waits it out).
    max_backoff_wait_s: float = 5.0
    cache_ttl_s: int = 60
    #: The Redis keys' prefix (``<prefix>:page:...``): one per deployment sharing a Redis.
    cache_key_prefix: str = "search"
    refresh_interval_s: float = 600.0
    #: API pages a refresh asks for per query, at most (pages past them: when a view needs).
    refresh_max_pages_per_query: int = 2
    #: New queries one client (address) may create per minute, in one worker (burst: as many).
    new_queries_per_minute: int = 10
    page_sizes: tuple[int, ...] = (25, 50, 100)
    default_page_size: int = 25
    sortable_columns: tuple[str, ...] = SORTABLE_COLUMNS
    default_sort: str = "score"
    default_order: str = "desc"


def load_config(path: Path | Traversable | None) -> SearchConfig:
    """The configuration in ``path`` (default: the shipped ``search.ini``, or the defaults)."""
    if path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return SearchConfig()
        path = DEFAULT_CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SearchConfigError(f"SEARCH_CONFIG: cannot read {path}: {exc.strerror}") from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "search.ini") -> SearchConfig:
    """Parse and check an ini text with the sections [api], [cache], [refresh], [pages]."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise SearchConfigError(f"{source}: {exc}") from None
    known = {
        "api": {
            "url",
            "key",
            "default_site",
            "timeout_s",
            "page_size",
            "sort",
            "order",
            "max_backoff_wait_s",
        },
        "cache": {"ttl_s", "key_prefix"},
        "refresh": {"interval_s", "max_pages_per_query"},
        "pages": {
            "page_sizes",
            "default_page_size",
            "sortable_columns",
            "default_sort",
            "default_order",
            "new_queries_per_minute",
        },
    }
    for section in parser.sections():
        if section not in known:
            raise SearchConfigError(f"{source}: unknown section [{section}]")
        for key in parser[section]:
            if key not in known[section]:
                raise SearchConfigError(f"{source}: unknown key {section}.{key}")
    reader = _Reader(parser, source)
    defaults = SearchConfig()
    api_url = reader.text("api", "url", defaults.api_url).rstrip("/")
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SearchConfigError(f"{source}: api.url must be an http(s) URL, got {api_url!r}")
    site = reader.text("api", "default_site", defaults.default_site)
    if SITE_NAME.fullmatch(site) is None:
        raise SearchConfigError(f"{source}: api.default_site must be a site name, got {site!r}")
    key_prefix = reader.text("cache", "key_prefix", defaults.cache_key_prefix)
    if _KEY_PREFIX.fullmatch(key_prefix) is None:
        raise SearchConfigError(
            f"{source}: cache.key_prefix must be 1-64 letters, digits, '_', '-' or ':',"
            f" got {key_prefix!r}"
        )
    page_sizes = reader.integers("pages", "page_sizes", defaults.page_sizes, low=1, high=100)
    default_page_size = reader.integer(
        "pages", "default_page_size", defaults.default_page_size, low=1, high=100
    )
    if default_page_size not in page_sizes:
        raise SearchConfigError(
            f"{source}: pages.default_page_size ({default_page_size}) must be one of"
            f" pages.page_sizes ({', '.join(map(str, page_sizes))})"
        )
    columns = reader.words("pages", "sortable_columns", defaults.sortable_columns)
    unknown = [column for column in columns if column not in SORTABLE_COLUMNS]
    if unknown:
        raise SearchConfigError(
            f"{source}: pages.sortable_columns: unknown {', '.join(unknown)}"
            f" (known: {', '.join(SORTABLE_COLUMNS)})"
        )
    default_sort = reader.text("pages", "default_sort", defaults.default_sort)
    if default_sort not in columns:
        raise SearchConfigError(
            f"{source}: pages.default_sort ({default_sort!r}) must be one of pages.sortable_columns"
        )
    return SearchConfig(
        api_url=api_url,
        api_key=reader.text("api", "key", "") or None,
        default_site=site,
        request_timeout_s=reader.number("api", "timeout_s", defaults.request_timeout_s, high=300),
        api_page_size=reader.integer("api", "page_size", defaults.api_page_size, low=1, high=100),
        api_sort=reader.choice("api", "sort", defaults.api_sort, _API_SORTS),
        api_order=reader.choice("api", "order", defaults.api_order, ("asc", "desc")),
        max_backoff_wait_s=reader.number(
            "api", "max_backoff_wait_s", defaults.max_backoff_wait_s, high=3600, zero_ok=True
        ),
        cache_key_prefix=key_prefix,
        cache_ttl_s=reader.integer("cache", "ttl_s", defaults.cache_ttl_s, low=1, high=86_400),
        refresh_interval_s=reader.number(
            "refresh",
            "interval_s",
            defaults.refresh_interval_s,
            low=MIN_REFRESH_INTERVAL_S,
            high=7 * 86_400,
            zero_ok=True,
        ),
        refresh_max_pages_per_query=reader.integer(
            "refresh",
            "max_pages_per_query",
            defaults.refresh_max_pages_per_query,
            low=1,
            high=50,
        ),
        new_queries_per_minute=reader.integer(
            "pages", "new_queries_per_minute", defaults.new_queries_per_minute, low=1, high=10_000
        ),
        page_sizes=page_sizes,
        default_page_size=default_page_size,
        sortable_columns=columns,
        default_sort=default_sort,
        default_order=reader.choice(
            "pages", "default_order", defaults.default_order, ("asc", "desc")
        ),
    )


class _Reader:
    def __init__(self, parser: configparser.ConfigParser, source: str) -> None:
        self._parser = parser
        self._source = source

    def _raw(self, section: str, key: str) -> str | None:
        if not self._parser.has_section(section):
            return None
        raw = self._parser[section].get(key)
        return None if raw is None else raw.strip()

    def _error(self, section: str, key: str, what: str, raw: str) -> SearchConfigError:
        return SearchConfigError(f"{self._source}: {section}.{key} must be {what}, got {raw!r}")

    def text(self, section: str, key: str, default: str) -> str:
        raw = self._raw(section, key)
        return default if raw is None else raw

    def choice(self, section: str, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(section, key, default)
        if value not in choices:
            raise self._error(section, key, f"one of {', '.join(choices)}", value)
        return value

    def number(
        self,
        section: str,
        key: str,
        default: float,
        *,
        low: float = 0.0,
        high: float,
        zero_ok: bool = False,
    ) -> float:
        raw = self._raw(section, key)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self._error(section, key, "a number", raw) from None
        low_ok = value >= low if zero_ok else value > low
        if not (math.isfinite(value) and low_ok and value <= high):
            bound = ">=" if zero_ok else ">"
            raise self._error(section, key, f"a number {bound} {low:g} and <= {high:g}", raw)
        return value

    def integer(self, section: str, key: str, default: int, *, low: int, high: int) -> int:
        raw = self._raw(section, key)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self._error(section, key, "an integer", raw) from None
        if not low <= value <= high:
            raise self._error(section, key, f"an integer from {low} to {high}", raw)
        return value

    def integers(
        self, section: str, key: str, default: tuple[int, ...], *, low: int, high: int
    ) -> tuple[int, ...]:
        raw = self._raw(section, key)
        if raw is None or raw == "":
            return default
        values: list[int] = []
        for word in raw.replace(",", " ").split():
            try:
                value = int(word)
            except ValueError:
                raise self._error(section, key, "integers separated by commas", raw) from None
            if not low <= value <= high:
                raise self._error(section, key, f"integers from {low} to {high}", raw)
            values.append(value)
        if len(set(values)) != len(values):
            raise self._error(section, key, "distinct integers", raw)
        return tuple(sorted(values))

    def words(self, section: str, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(section, key)
        if raw is None or raw == "":
            return default
        return tuple(word for word in raw.replace(",", " ").split())
