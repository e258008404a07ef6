"""The search's values: a stored query, a question, one page of the API's answer."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ApiPage", "Question", "StoredQuery", "safe_link"]


@dataclass(frozen=True, slots=True)
class Question:
    """One question as the API describes it (the fields the results table shows)."""

    site: str
    question_id: int
    title: str
    link: str
    score: int
    answer_count: int
    view_count: int
    is_answered: bool
    tags: tuple[str, ...]
    owner: str
    creation_date: datetime
    last_activity_date: datetime

    @classmethod
    def from_api(cls, site: str, item: dict[str, Any]) -> Question:
        """From an item of the API's ``items``. Raises ``KeyError``/``TypeError``/``ValueError``
        on an item without the fields every question has."""
        owner = item.get("owner") or {}
        # The API sends titles and names HTML-escaped (&quot;, &#39;); the page escapes again.
        return cls(
            site=site,
            question_id=int(item["question_id"]),
            title=html.unescape(str(item["title"])),
            link=safe_link(str(item["link"])),
            score=int(item.get("score", 0)),
            answer_count=int(item.get("answer_count", 0)),
            view_count=int(item.get("view_count", 0)),
            is_answered=bool(item.get("is_answered", False)),
            tags=tuple(str(tag) for tag in item.get("tags", ())),
            owner=html.unescape(str(owner.get("display_name", ""))),
            creation_date=datetime.fromtimestamp(int(item["creation_date"]), UTC),
            last_activity_date=datetime.fromtimestamp(
                int(item.get("last_activity_date", item["creation_date"])), UTC
            ),
        )


def safe_link(link: str) -> str:
    """``link`` if it is an http(s) URL with a host, else "" (the page shows the title
    without a link): a ``javascript:`` link would run in our pages' origin when clicked."""
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return link.strip()


@dataclass(frozen=True, slots=True)
class ApiPage:
    """One page of the API's answer to a search."""

    questions: tuple[Question, ...]
    has_more: bool
    quota_remaining: int | None
    #: Seconds before the same method may be called again (the API's ``backoff``), if any.
    backoff_s: int | None = None


@dataclass(frozen=True, slots=True)
class StoredQuery:
    """A query as stored: its text, site, how much of the API's answer is stored."""

    id: int
    text: str
    site: str
    result_count: int
    #: API pages fetched so far (of ``api_page_size`` results each), and whether there are more.
    pages_fetched: int
    has_more: bool
    created_at: datetime
    refreshed_at: datetime | None
    #: Why the API refused the query itself (no such site...): it is not run again.
    refused: str | None = None

    @property
    def label(self) -> str:
        """How notices and pages name it."""
        return f'"{self.text}" on {self.site}'
