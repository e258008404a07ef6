"""Getting a query's results from the API into the store: more pages as a page needs them,
all of them again on a refresh. No I/O of its own: it drives a source and a store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .client import ApiErrorResponse, SearchSource
from .models import ApiPage, StoredQuery

__all__ = [
    "MAX_API_PAGES_PER_REQUEST",
    "ResultsStore",
    "fetch_all_again",
    "fetch_until",
    "is_refusal",
]

#: API calls one page view may make (a jump far ahead fetches this much, and says so).
MAX_API_PAGES_PER_REQUEST = 5


class ResultsStore(Protocol):
    """The part of the store that fetching writes (PostgreSQL, or an in-memory fake)."""

    async def get_query(self, query_id: int) -> StoredQuery | None: ...

    async def append_page(self, query_id: int, page_number: int, page: ApiPage) -> bool: ...

    async def replace_results(self, query_id: int, pages: Sequence[ApiPage]) -> int: ...

    async def mark_refused(self, query_id: int, reason: str) -> None:
        """The API refused the query itself (no such site, a bad parameter): it is not run
        again, by a page nor by the refresher."""
        ...


def is_refusal(error: Exception) -> bool:
    """An answer that refuses the query itself (``bad_parameter``: no such site, a text it
    will not search), not a passing failure: asking again costs quota for the same answer."""
    return isinstance(error, ApiErrorResponse) and (
        error.error_name == "bad_parameter" or error.error_id == 400
    )


async def fetch_until(
    query: StoredQuery,
    api_pages_needed: int,
    *,
    source: SearchSource,
    store: ResultsStore,
    api_page_size: int,
    max_calls: int = MAX_API_PAGES_PER_REQUEST,
) -> StoredQuery:
    """Append API pages until ``api_pages_needed`` are stored, the API has no more, or
    ``max_calls`` were made; the query as stored then. Errors of the source propagate
    (what is stored stays); a refusal of the query's first call marks it refused."""
    calls = 0
    while (
        query.refused is None
        and query.has_more
        and query.pages_fetched < api_pages_needed
        and calls < max_calls
    ):
        number = query.pages_fetched + 1
        try:
            page = await source.search(query.text, query.site, number, api_page_size)
        except ApiErrorResponse as exc:
            if number == 1 and is_refusal(exc):
                await store.mark_refused(query.id, str(exc))
            raise
        calls += 1
        # False: a concurrent request stored that page first; either way, read it back.
        await store.append_page(query.id, number, page)
        reread = await store.get_query(query.id)
        if reread is None:  # deleted meanwhile
            return query
        query = reread
    return query


async def fetch_all_again(
    query: StoredQuery,
    *,
    source: SearchSource,
    store: ResultsStore,
    api_page_size: int,
    max_pages: int,
) -> int:
    """A refresh: as many API pages as were stored, at least one and at most ``max_pages``
    (the quota), stored in place of the old results; how many results the query has now.
    Pages past ``max_pages`` are fetched again when a page view needs them. A refusal of
    a query never answered marks it refused (and propagates)."""
    pages: list[ApiPage] = []
    for number in range(1, min(max(1, query.pages_fetched), max_pages) + 1):
        try:
            page = await source.search(query.text, query.site, number, api_page_size)
        except ApiErrorResponse as exc:
            if number == 1 and query.pages_fetched == 0 and is_refusal(exc):
                await store.mark_refused(query.id, str(exc))
            raise
        pages.append(page)
        if not page.has_more:
            break
    return await store.replace_results(query.id, pages)
