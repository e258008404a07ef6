"""The search's tables (``search_*`` in ``schema.sql``) through SQLAlchemy on the worker's
database: queries, questions updated in place, and each query's ordered results."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..platform.database import Database
from .models import ApiPage, Question, StoredQuery

__all__ = ["SORT_EXPRESSIONS", "PgRefreshLock", "SearchStore"]

#: The ORDER BY expression of each sortable column (a whitelist: never the user's text).
SORT_EXPRESSIONS = {
    "title": 'lower(q.title) COLLATE "C"',
    "score": "q.score",
    "answer_count": "q.answer_count",
    "view_count": "q.view_count",
    "is_answered": "q.is_answered",
    "owner": 'lower(q.owner) COLLATE "C"',
    "creation_date": "q.creation_date",
    "last_activity_date": "q.last_activity_date",
}

_QUERY_COLUMNS = """
    sq.id, sq.text, sq.site, sq.pages_fetched, sq.has_more, sq.created_at, sq.refreshed_at,
    sq.refused,
    (SELECT count(*) FROM search_results r WHERE r.query_id = sq.id) AS result_count
"""

_UPSERT_QUESTION = text(
    """
    INSERT INTO search_questions (site, question_id, title, link, score, answer_count,
        view_count, is_answered, tags, owner, creation_date, last_activity_date)
    VALUES (:site, :question_id, :title, :link, :score, :answer_count, :view_count,
        :is_answered, :tags, :owner, :creation_date, :last_activity_date)
    ON CONFLICT (site, question_id) DO UPDATE SET
        title = excluded.title, link = excluded.link, score = excluded.score,
        answer_count = excluded.answer_count, view_count = excluded.view_count,
        is_answered = excluded.is_answered, tags = excluded.tags, owner = excluded.owner,
        creation_date = excluded.creation_date,
        last_activity_date = excluded.last_activity_date, updated_at = now()
    """
)

# The next free position for each question not yet among the query's results (a question
# may come again on a later API page when the order shifted between two calls).
_LINK = text(
    """
    INSERT INTO search_results (query_id, position, site, question_id)
    SELECT :query_id, coalesce((SELECT max(position) + 1 FROM search_results
                                WHERE query_id = :query_id), 0), :site, :question_id
    WHERE NOT EXISTS (SELECT 1 FROM search_results WHERE query_id = :query_id
                      AND site = :site AND question_id = :question_id)
    """
)

#: The refresher's advisory lock (one worker or command at a time refreshes).
REFRESH_LOCK_KEY = 0x5EA2C4


class SearchStore:
    """Reads and writes of the search's tables; each call is its own short transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._engine = database.engine

    async def find_or_create_query(self, site: str, query_text: str) -> tuple[StoredQuery, bool]:
        """The stored query of this text (case-insensitively) and site; True if new."""
        return await self._database.run(self._find_or_create(site, query_text))

    async def _find_or_create(self, site: str, query_text: str) -> tuple[StoredQuery, bool]:
        async with self._engine.begin() as conn:
            created = await conn.execute(
                text(
                    "INSERT INTO search_queries (site, text) VALUES (:site, :text)"
                    " ON CONFLICT (site, lower(text)) DO NOTHING RETURNING id"
                ),
                {"site": site, "text": query_text},
            )
            new = created.first() is not None
            row = (
                await conn.execute(
                    text(
                        f"SELECT {_QUERY_COLUMNS} FROM search_queries sq"
                        " WHERE sq.site = :site AND lower(sq.text) = lower(:text)"
                    ),
                    {"site": site, "text": query_text},
                )
            ).one()
            return _stored_query(row._mapping), new

    async def find_query(self, site: str, query_text: str) -> StoredQuery | None:
        """The stored query of this text (case-insensitively) and site, if any."""
        rows = await self._rows(
            f"SELECT {_QUERY_COLUMNS} FROM search_queries sq"
            " WHERE sq.site = :site AND lower(sq.text) = lower(:text)",
            site=site,
            text=query_text,
        )
        return _stored_query(rows[0]) if rows else None

    async def get_query(self, query_id: int) -> StoredQuery | None:
        rows = await self._rows(
            f"SELECT {_QUERY_COLUMNS} FROM search_queries sq WHERE sq.id = :id", id=query_id
        )
        return _stored_query(rows[0]) if rows else None

    async def count_queries(self) -> int:
        rows = await self._rows("SELECT count(*) AS n FROM search_queries")
        return int(rows[0]["n"])

    async def queries_page(self, offset: int, limit: int) -> list[StoredQuery]:
        """One page of the stored queries, oldest first."""
        rows = await self._rows(
            f"SELECT {_QUERY_COLUMNS} FROM search_queries sq ORDER BY sq.id"
            " OFFSET :offset LIMIT :limit",
            offset=offset,
            limit=limit,
        )
        return [_stored_query(row) for row in rows]

    async def recent_queries(self, limit: int) -> list[StoredQuery]:
        """The ``limit`` newest queries, newest first (one indexed read, not the whole list)."""
        rows = await self._rows(
            f"SELECT {_QUERY_COLUMNS} FROM search_queries sq ORDER BY sq.id DESC LIMIT :n",
            n=limit,
        )
        return [_stored_query(row) for row in rows]

    async def mark_refused(self, query_id: int, reason: str) -> None:
        """The API refused this query itself: it is not run again (see ``refused``)."""
        await self._database.run(self._mark_refused(query_id, reason))

    async def _mark_refused(self, query_id: int, reason: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE search_queries SET refused = :reason, has_more = false WHERE id = :id"
                ),
                {"id": query_id, "reason": reason},
            )

    async def due_queries(self, older_than_s: float) -> list[StoredQuery]:
        """Queries not refreshed (nor first run) within the last ``older_than_s`` seconds,
        except those the API refused."""
        rows = await self._rows(
            f"SELECT {_QUERY_COLUMNS} FROM search_queries sq"
            " WHERE sq.refused IS NULL AND coalesce(sq.refreshed_at, sq.created_at)"
            " <= now() - make_interval(secs => :s) ORDER BY sq.id",
            s=older_than_s,
        )
        return [_stored_query(row) for row in rows]

    async def results(
        self, query_id: int, *, sort: str, order: str, offset: int, limit: int
    ) -> list[Question]:
        """One page of a query's stored results, sorted by ``sort`` (a key of
        :data:`SORT_EXPRESSIONS`), ties in the API's order."""
        expression = SORT_EXPRESSIONS[sort]
        direction = {"asc": "ASC", "desc": "DESC"}[order]
        rows = await self._rows(
            "SELECT q.* FROM search_results r JOIN search_questions q"
            " ON q.site = r.site AND q.question_id = r.question_id"
            f" WHERE r.query_id = :id ORDER BY {expression} {direction}, r.position"
            " OFFSET :offset LIMIT :limit",
            id=query_id,
            offset=offset,
            limit=limit,
        )
        return [_question(row) for row in rows]

    async def append_page(self, query_id: int, page_number: int, page: ApiPage) -> bool:
        """Store API page ``page_number`` after the ones stored; False (nothing stored) when
        another request stored it first."""
        return await self._database.run(self._append(query_id, page_number, page))

    async def _append(self, query_id: int, page_number: int, page: ApiPage) -> bool:
        async with self._engine.begin() as conn:
            claimed = await conn.execute(
                text(
                    "UPDATE search_queries SET pages_fetched = :n, has_more = :more"
                    " WHERE id = :id AND pages_fetched = :n - 1 RETURNING id"
                ),
                {"id": query_id, "n": page_number, "more": page.has_more},
            )
            if claimed.first() is None:
                return False
            await _store_questions(conn, query_id, page.questions)
            return True

    async def replace_results(self, query_id: int, pages: Sequence[ApiPage]) -> int:
        """A refresh: the query's results become these pages' questions (updated in place);
        returns how many results it has now."""
        return await self._database.run(self._replace(query_id, pages))

    async def _replace(self, query_id: int, pages: Sequence[ApiPage]) -> int:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE search_queries SET pages_fetched = :n, has_more = :more,"
                    " refreshed_at = now() WHERE id = :id"
                ),
                {"id": query_id, "n": len(pages), "more": bool(pages and pages[-1].has_more)},
            )
            await conn.execute(
                text("DELETE FROM search_results WHERE query_id = :id"), {"id": query_id}
            )
            questions = [question for page in pages for question in page.questions]
            await _store_questions(conn, query_id, questions)
            count = await conn.execute(
                text("SELECT count(*) FROM search_results WHERE query_id = :id"), {"id": query_id}
            )
            return int(count.scalar_one())

    async def _rows(self, sql: str, **params: Any) -> list[Any]:
        return await self._database.run(self._fetch(sql, params))

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[Any]:
        async with self._engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [row._mapping for row in result]


class PgRefreshLock:
    """A :class:`~service.search.refresher.RefreshLock` on a PostgreSQL advisory lock: held by
    one session of all workers and commands on the database at a time; a crashed holder's
    lock goes with its connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        run = self._database.run
        conn = await run(_connect(self._database.engine))
        got = False
        try:
            got = bool(await run(_scalar(conn, "SELECT pg_try_advisory_lock(:k)")))
            await run(conn.commit())  # the lock is the session's; no transaction stays open
            yield got
        finally:
            with trio.move_on_after(2.0, shield=True):
                if got:
                    await run(_scalar(conn, "SELECT pg_advisory_unlock(:k)"))
                await run(conn.close())


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    return await engine.connect()


async def _scalar(conn: AsyncConnection, sql: str) -> Any:
    result = await conn.execute(text(sql), {"k": REFRESH_LOCK_KEY})
    return result.scalar()


async def _store_questions(
    conn: AsyncConnection, query_id: int, questions: Sequence[Question]
) -> None:
    if not questions:
        return
    await conn.execute(
        _UPSERT_QUESTION,
        [
            {
                "site": q.site,
                "question_id": q.question_id,
                "title": q.title,
                "link": q.link,
                "score": q.score,
                "answer_count": q.answer_count,
                "view_count": q.view_count,
                "is_answered": q.is_answered,
                "tags": list(q.tags),
                "owner": q.owner,
                "creation_date": q.creation_date,
                "last_activity_date": q.last_activity_date,
            }
            for q in questions
        ],
    )
    # Executed one after the other: each takes the next position after the one before.
    await conn.execute(
        _LINK,
        [{"query_id": query_id, "site": q.site, "question_id": q.question_id} for q in questions],
    )


def _stored_query(row: Any) -> StoredQuery:
    return StoredQuery(
        id=int(row["id"]),
        text=row["text"],
        site=row["site"],
        result_count=int(row["result_count"]),
        pages_fetched=int(row["pages_fetched"]),
        has_more=bool(row["has_more"]),
        created_at=row["created_at"],
        refreshed_at=row["refreshed_at"],
        refused=row["refused"],
    )


def _question(row: Any) -> Question:
    return Question(
        site=row["site"],
        question_id=int(row["question_id"]),
        title=row["title"],
        link=row["link"],
        score=int(row["score"]),
        answer_count=int(row["answer_count"]),
        view_count=int(row["view_count"]),
        is_answered=bool(row["is_answered"]),
        tags=tuple(row["tags"] or ()),
        owner=row["owner"],
        creation_date=row["creation_date"],
        last_activity_date=row["last_activity_date"],
    )
