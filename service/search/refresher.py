"""The background refresher: every interval, each stored query is run against the API again
and its results updated; a notice tells the open pages. One refresher at a time across all
workers and commands (a lock), and a query refreshed within the interval is left alone, so
N workers still refresh each query once per interval."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import trio

from .client import ApiBackoffError, ApiThrottledError, SearchApiError, SearchSource
from .fetching import ResultsStore, fetch_all_again
from .models import StoredQuery
from .notices import Notice, NoticePublisher

__all__ = ["MAX_BACKOFF_WAIT_S", "RefreshLock", "RefreshReport", "RefreshStore", "Refresher"]

logger = logging.getLogger("service.search.refresher")

#: A backoff the refresher's client waits out (a longer one, or throttling, ends the round).
MAX_BACKOFF_WAIT_S = 60.0


class RefreshLock(Protocol):
    """Held by one refresher at a time; ``hold()`` yields whether this one got it."""

    def hold(self) -> AbstractAsyncContextManager[bool]: ...


class RefreshStore(ResultsStore, Protocol):
    async def due_queries(self, older_than_s: float) -> Sequence[StoredQuery]: ...


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one round did."""

    locked_out: bool = False
    refreshed: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    #: Due but not tried: the API throttled us or asked for a backoff, so the round ended.
    deferred: tuple[int, ...] = ()


class Refresher:
    """Runs the rounds; the I/O is in the source, the store, the lock and the publisher."""

    def __init__(
        self,
        *,
        source: SearchSource,
        store: RefreshStore,
        lock: RefreshLock,
        notices: NoticePublisher,
        interval_s: float,
        api_page_size: int,
        max_pages_per_query: int = 2,
    ) -> None:
        self._source = source
        self._store = store
        self._lock = lock
        self._notices = notices
        self._interval_s = interval_s
        self._api_page_size = api_page_size
        self._max_pages = max_pages_per_query

    async def run_once(self, *, every_query: bool = False) -> RefreshReport:
        """One round: the queries due (all of them with ``every_query``), if no other
        refresher holds the lock."""
        async with self._lock.hold() as got:
            if not got:
                logger.info("another refresher is running; this round is skipped")
                return RefreshReport(locked_out=True)
            # A little early rather than a whole interval late: rounds drift by their length.
            due = await self._store.due_queries(0.0 if every_query else self._interval_s * 0.9)
            refreshed: list[int] = []
            failed: list[int] = []
            deferred: tuple[int, ...] = ()
            for index, query in enumerate(due):
                try:
                    count = await fetch_all_again(
                        query,
                        source=self._source,
                        store=self._store,
                        api_page_size=self._api_page_size,
                        max_pages=self._max_pages,
                    )
                except (ApiThrottledError, ApiBackoffError) as exc:
                    # Every further call would be refused too (and count against us): the
                    # rest wait for the next round.
                    deferred = tuple(q.id for q in due[index:])
                    logger.warning(
                        "refresh round ended early, %d queries left for the next one: %s",
                        len(deferred),
                        exc,
                    )
                    break
                except SearchApiError as exc:
                    logger.warning(
                        "refreshing query %d (%s) failed: %s", query.id, query.label, exc
                    )
                    failed.append(query.id)
                    continue
                refreshed.append(query.id)
                await self._notices.publish(Notice.of(query, count))
            if due:
                logger.info(
                    "refreshed %d queries (%d failed, %d deferred)",
                    len(refreshed),
                    len(failed),
                    len(deferred),
                )
            return RefreshReport(
                refreshed=tuple(refreshed), failed=tuple(failed), deferred=deferred
            )

    async def serve(self) -> None:
        """A round at once (the queries due: a restart does not wait a whole interval), then
        one every interval, until cancelled. A round that fails (the database away) is
        logged; the next one comes on time."""
        while True:
            try:
                await self.run_once()
            except Exception:  # a round's failure must not end the loop
                logger.exception("a refresh round failed")
            await trio.sleep(self._interval_s)
