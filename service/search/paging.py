"""The results page's parameters (``page``, ``per_page``, ``sort``, ``order``) and how many
results it needs stored: pure logic, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .config import SearchConfig

__all__ = ["MAX_PAGE", "PageRequest", "PagingError", "parse_page_request"]

#: A whole number as the query string may carry it: ASCII digits only (``str.isdigit`` also
#: accepts "²" or "٣", which ``int`` refuses or reads as another number).
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")

#: The highest page number accepted (the API itself serves at most a few thousand results).
MAX_PAGE = 10_000


class PagingError(ValueError):
    """A parameter of the results page is invalid; the message says which and why."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of a query's results: which rows, in which order."""

    page: int
    per_page: int
    sort: str
    order: str

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def results_needed(self) -> int:
        """Stored results this page needs (fewer only when the API has no more)."""
        return self.page * self.per_page

    def api_pages_needed(self, api_page_size: int) -> int:
        """API pages (of ``api_page_size``) that hold at least :attr:`results_needed`."""
        return -(-self.results_needed // api_page_size)

    def with_(self, **changes: object) -> dict[str, object]:
        """The query-string parameters of this page with ``changes`` (for links)."""
        values: dict[str, object] = {
            "page": self.page,
            "per_page": self.per_page,
            "sort": self.sort,
            "order": self.order,
        }
        values.update(changes)
        return values


def parse_page_request(args: Mapping[str, str], config: SearchConfig) -> PageRequest:
    """The page asked for; :class:`PagingError` names the bad parameter and its choices."""
    page = _integer(args, "page", 1)
    if not 1 <= page <= MAX_PAGE:
        raise PagingError(f"page must be a whole number from 1 to {MAX_PAGE}, got {page}")
    per_page = _integer(args, "per_page", config.default_page_size)
    if per_page not in config.page_sizes:
        sizes = ", ".join(map(str, config.page_sizes))
        raise PagingError(f"per_page must be one of {sizes}, got {per_page}")
    sort = args.get("sort", config.default_sort)
    if sort not in config.sortable_columns:
        raise PagingError(
            f"sort must be one of {', '.join(config.sortable_columns)}, got {sort[:40]!r}"
        )
    order = args.get("order", config.default_order)
    if order not in ("asc", "desc"):
        raise PagingError(f"order must be asc or desc, got {order[:40]!r}")
    return PageRequest(page, per_page, sort, order)


def _integer(args: Mapping[str, str], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if _WHOLE_NUMBER.fullmatch(raw) is None:
        raise PagingError(f"{name} must be a whole number, got {raw[:40]!r}")
    return int(raw)
