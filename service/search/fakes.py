"""In-memory fakes of the search's seams (source, store, lock), for tests on trio's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

import trio

from .client import SearchApiError
from .fake_api import fake_questions
from .models import ApiPage, Question, StoredQuery

__all__ = ["MemoryLock", "MemorySource", "MemoryStore"]


class MemorySource:
    """A :class:`~service.search.client.SearchSource` answering the fake API's questions."""

    def __init__(self) -> None:
        self.generation = 0
        self.calls: list[tuple[str, str, int]] = []
        self.failing: set[str] = set()
        #: Texts answered with this error instead (a refusal, throttling...).
        self.errors: dict[str, SearchApiError] = {}
        self.delay_s = 0.0

    async def search(self, text: str, site: str, page: int, page_size: int) -> ApiPage:
        self.calls.append((text, site, page))
        if self.delay_s:
            await trio.sleep(self.delay_s)
        if text in self.errors:
            raise self.errors[text]
        if text in self.failing:
            raise SearchApiError(f"the API refused {text!r}")
        items = fake_questions(site, text, self.generation)
        start = (page - 1) * page_size
        chunk = items[start : start + page_size]
        return ApiPage(
            questions=tuple(Question.from_api(site, item) for item in chunk),
            has_more=start + page_size < len(items),
            quota_remaining=None,
        )


class MemoryStore:
    """A refresher's store in memory; ``clock`` gives seconds (trio's virtual clock)."""

    def __init__(self, clock: Callable[[], float] = trio.current_time) -> None:
        self._clock = clock
        self.queries: dict[int, StoredQuery] = {}
        self.results: dict[int, list[Question]] = {}
        #: When each query was last run (clock seconds).
        self.ran_at: dict[int, float] = {}

    def add_query(self, text: str, site: str = "stackoverflow") -> StoredQuery:
        query_id = len(self.queries) + 1
        query = StoredQuery(
            id=query_id,
            text=text,
            site=site,
            result_count=0,
            pages_fetched=0,
            has_more=True,
            created_at=datetime.now(UTC),
            refreshed_at=None,
        )
        self.queries[query_id] = query
        self.results[query_id] = []
        self.ran_at[query_id] = self._clock()
        return query

    async def get_query(self, query_id: int) -> StoredQuery | None:
        return self.queries.get(query_id)

    async def due_queries(self, older_than_s: float) -> Sequence[StoredQuery]:
        now = self._clock()
        return [
            q
            for q in self.queries.values()
            if q.refused is None and self.ran_at[q.id] <= now - older_than_s
        ]

    async def mark_refused(self, query_id: int, reason: str) -> None:
        self.queries[query_id] = replace(self.queries[query_id], refused=reason, has_more=False)

    async def append_page(self, query_id: int, page_number: int, page: ApiPage) -> bool:
        query = self.queries[query_id]
        if query.pages_fetched != page_number - 1:
            return False
        have = {q.question_id for q in self.results[query_id]}
        self.results[query_id].extend(q for q in page.questions if q.question_id not in have)
        self.queries[query_id] = replace(
            query,
            pages_fetched=page_number,
            has_more=page.has_more,
            result_count=len(self.results[query_id]),
        )
        return True

    async def replace_results(self, query_id: int, pages: Sequence[ApiPage]) -> int:
        questions = [q for page in pages for q in page.questions]
        self.results[query_id] = questions
        self.ran_at[query_id] = self._clock()
        self.queries[query_id] = replace(
            self.queries[query_id],
            pages_fetched=len(pages),
            has_more=bool(pages and pages[-1].has_more),
            result_count=len(questions),
            refreshed_at=datetime.now(UTC),
        )
        return len(questions)


class MemoryLock:
    """A :class:`~service.search.refresher.RefreshLock` shared by refreshers of one process."""

    def __init__(self) -> None:
        self.held = False

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        if self.held:
            yield False
            return
        self.held = True
        try:
            yield True
        finally:
            self.held = False
