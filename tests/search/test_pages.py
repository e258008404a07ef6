"""The search's pages through the real app (served by hypercorn) on a real PostgreSQL and the
fake API: the form, the stored queries, the results' paging (25/50/100), every sortable
column both ways, fetching more from the API as pages need it, and bad values as 400 pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.search.config import SORTABLE_COLUMNS
from service.search.fake_api import FakeApiState, fake_questions
from tests.support.search_fixtures import (
    question_ids,
    running_fake_api,
    search_app,
    serving,
    write_ini,
)

pytestmark = pytest.mark.integration

TEXT = "trio nursery"
SITE = "stackoverflow"


@dataclass
class Site:
    client: httpx.AsyncClient
    fake: FakeApiState


@pytest.fixture
async def site(empty_db: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with running_fake_api() as (url, fake):
        app = search_app(empty_db, write_ini(tmp_path / "search.ini", url))
        async with serving(app) as client:
            yield Site(client, fake)


async def new_query(site: Site, text: str = TEXT, where: str = "") -> str:
    response = await site.client.post("/search", data={"q": text, "site": where})
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def api_order(text: str = TEXT) -> list[dict[str, Any]]:
    """The fake's questions in the order the client asks for (activity, newest first)."""
    items = fake_questions(SITE, text)
    items.sort(key=lambda i: (i["last_activity_date"], i["question_id"]), reverse=True)
    return items


async def test_the_form_stores_a_query_once_and_redirects_to_its_results(site: Site) -> None:
    form = await site.client.get("/search")
    assert form.status_code == 200
    assert 'name="q"' in form.text
    location = await new_query(site)
    assert re.fullmatch(r"/search/queries/\d+", location)
    assert await new_query(site, "  Trio   NURSERY ") == location  # the same query again
    assert await new_query(site, TEXT, "superuser") != location  # another site, another query
    assert site.fake.calls == 0  # nothing asked of the API before a page needs it
    listing = await site.client.get("/search/queries")
    assert listing.text.count('href="/search/queries/') == 2
    assert TEXT in listing.text
    assert "superuser" in listing.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"q": "   "}, "Type some words"),
        ({"q": "x" * 201}, "at most 200 characters"),
        ({"q": "ok", "site": "not a site!"}, "Stack Exchange site name"),
        ({"q": "nul\x00byte"}, "control characters"),
        ({"q": "tab\x1bescape"}, "control characters"),
        ({"q": "ok", "site": "so\x00"}, "Stack Exchange site name"),
    ],
)
async def test_a_bad_search_is_a_400_form_keeping_what_was_typed(
    site: Site, fields: dict[str, str], message: str
) -> None:
    response = await site.client.post("/search", data=fields)
    assert response.status_code == 400
    assert message in response.text
    if fields["q"].strip():  # what was typed, control characters shown as spaces
        typed = " ".join(re.sub(r"[\x00-\x1f]", " ", fields["q"]).split())
        assert typed[:50] in response.text


@pytest.mark.parametrize("per_page", [25, 50, 100])
async def test_pages_of_each_size_follow_each_other_in_the_chosen_order(
    site: Site, per_page: int
) -> None:
    location = await new_query(site)
    items = api_order()
    expected = [
        i["question_id"] for i in sorted(items, key=lambda i: (-i["score"], items.index(i)))
    ]
    # Every result stored first (a page far ahead fetches the rest from the API).
    await site.client.get(f"{location}?page=4&per_page=100")
    assert site.fake.calls == -(-len(items) // 100)
    pages = -(-len(items) // per_page)
    seen: list[int] = []
    for page in range(1, pages + 1):
        response = await site.client.get(
            f"{location}?page={page}&per_page={per_page}&sort=score&order=desc"
        )
        assert response.status_code == 200, response.text
        ids = question_ids(response.text)
        assert ids == expected[(page - 1) * per_page : page * per_page]
        assert f"Page {page} of {pages}" in response.text
        seen.extend(ids)
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(items)
    past = await site.client.get(f"{location}?page={pages + 1}&per_page={per_page}")
    assert past.status_code == 404
    assert "past the last page" in past.text


async def test_the_api_is_asked_only_for_the_pages_a_page_needs(site: Site) -> None:
    location = await new_query(site)
    await site.client.get(f"{location}?per_page=25")
    assert site.fake.calls == 1  # 25 of the 100 of the first API page
    await site.client.get(f"{location}?per_page=25&page=4")
    assert site.fake.calls == 1  # 100 stored: enough
    response = await site.client.get(f"{location}?per_page=25&page=5")
    assert site.fake.calls == 2  # 125 needed: the next API page, appended
    assert len(question_ids(response.text)) == 25
    assert f"{min(200, len(api_order()))} results stored" in response.text
    await site.client.get(f"{location}?per_page=100&page=1&sort=title&order=asc")
    assert site.fake.calls == 2  # another size and sort: read from the database


@pytest.mark.parametrize("column", SORTABLE_COLUMNS)
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_every_column_sorts_both_ways(site: Site, column: str, order: str) -> None:
    location = await new_query(site)
    response = await site.client.get(f"{location}?per_page=100&sort={column}&order={order}")
    assert response.status_code == 200
    stored = api_order()[:100]  # the first API page is what is stored

    def key(item: dict[str, Any]) -> Any:
        value = {"owner": item["owner"]["display_name"].replace("&#39;", "'")}.get(
            column, item.get(column)
        )
        return value.lower() if isinstance(value, str) else value

    position = {item["question_id"]: index for index, item in enumerate(stored)}
    expected = sorted(stored, key=lambda i: position[i["question_id"]])  # ties: API order
    expected.sort(key=key, reverse=order == "desc")
    if column == "title":
        expected = sorted(stored, key=lambda i: position[i["question_id"]])
        expected.sort(
            key=lambda i: i["title"].replace("&quot;", '"').lower(), reverse=order == "desc"
        )
    assert question_ids(response.text) == [i["question_id"] for i in expected]
    # The header links: this column's flips the order, and says which way it sorts now.
    flipped = "asc" if order == "desc" else "desc"
    assert re.search(
        rf'href="[^"]*sort={column}&amp;order={flipped}[^"]*" [^>]*id="sort-{column}"',
        response.text,
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("per_page=30", "per_page must be one of 25, 50, 100, got 30"),
        ("per_page=all", "per_page must be a whole number"),
        ("sort=colour", "sort must be one of"),
        ("sort=score%3B+DROP+TABLE+x", "sort must be one of"),
        ("order=up", "order must be asc or desc"),
        ("page=0", "page must be a whole number from 1"),
        ("page=-2", "page must be a whole number"),
        ("page=x", "page must be a whole number"),
        ("page=%C2%B2", "page must be a whole number"),
        ("per_page=%C2%B2", "per_page must be a whole number"),
    ],
)
async def test_bad_values_are_a_clear_400_page(site: Site, query: str, message: str) -> None:
    location = await new_query(site)
    response = await site.client.get(f"{location}?{query}")
    assert response.status_code == 400
    assert "text/html" in response.headers["content-type"]
    assert message in response.text.replace("&#39;", "'")
    assert site.fake.calls == 0


async def test_an_unknown_query_is_a_404(site: Site) -> None:
    for path in ("/search/queries/999999", "/search/queries/99999999999999999999"):
        response = await site.client.get(path)
        assert response.status_code == 404


async def test_changing_the_page_size_keeps_the_first_row_in_view(site: Site) -> None:
    location = await new_query(site)
    page = await site.client.get(f"{location}?per_page=25&page=3")
    assert 'id="per-page-50" href="/search/queries/' in page.text
    link = re.search(r'id="per-page-50" href="([^"]+)"', page.text)
    assert link is not None
    assert "page=2" in link.group(1)
    assert "per_page=50" in link.group(1)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"error": [400, 400, "bad_parameter", "intitle is odd"]}, "bad_parameter"),
        ({"throttle": "502"}, "throttling"),
        ({"throttle": "429"}, "throttling"),
        ({"delay_s": 6.0}, "did not answer within"),
    ],
)
async def test_an_api_failure_is_a_message_on_the_page_not_a_500(
    site: Site, setup: dict[str, Any], message: str
) -> None:
    location = await new_query(site)
    await site.client.get(f"{location}?per_page=100")  # one API page stored
    for name, value in setup.items():
        setattr(site.fake, name, value)
    response = await site.client.get(f"{location}?per_page=100&page=2")
    assert response.status_code == 502
    assert message in response.text
    assert 'id="api-error"' in response.text
    first = await site.client.get(f"{location}?per_page=100&page=1")
    assert first.status_code == 200
    assert len(question_ids(first.text)) == 100


async def test_the_index_page_links_the_search(site: Site) -> None:
    response = await site.client.get("/")
    assert 'href="/search"' in response.text


async def test_a_query_on_a_site_the_api_does_not_have_is_marked_and_not_asked_again(
    site: Site,
) -> None:
    site.fake.unknown_sites.add("nosuchsite")
    location = await new_query(site, TEXT, "nosuchsite")
    for _view in range(2):
        response = await site.client.get(location)
        assert "No site found for name" in response.text
        assert 'id="api-error"' in response.text
    assert site.fake.calls == 1  # the refusal is stored: the second view did not ask again


async def test_new_queries_per_client_are_rate_limited(empty_db: str, tmp_path: Path) -> None:
    async with running_fake_api() as (url, fake):
        ini = write_ini(tmp_path / "search.ini", url, pages={"new_queries_per_minute": 2})
        async with serving(search_app(empty_db, ini)) as client:
            s = Site(client, fake)
            first = await new_query(s, "one")
            await new_query(s, "two")
            refused = await client.post("/search", data={"q": "three"})
            assert refused.status_code == 429
            assert "Too many new searches" in refused.text
            assert "three" in refused.text  # what was typed stays in the form
            assert await new_query(s, "ONE") == first  # a stored query stays open
            listing = await client.get("/search/queries")
    assert listing.text.count('href="/search/queries/') == 2


async def test_the_stored_queries_are_listed_a_hundred_a_page(
    empty_db: str, tmp_path: Path
) -> None:
    from tests.support.pg_admin import admin

    async with admin(empty_db) as conn:
        await conn.execute(
            "INSERT INTO search_queries (site, text)"
            " SELECT 'stackoverflow', 'query ' || g FROM generate_series(1, 105) g"
        )
    async with running_fake_api() as (url, _fake):
        ini = write_ini(tmp_path / "search.ini", url)
        async with serving(search_app(empty_db, ini)) as client:
            first = await client.get("/search/queries")
            second = await client.get("/search/queries?page=2")
            past = await client.get("/search/queries?page=3")
            bad = [
                await client.get(f"/search/queries?{query}")
                for query in ("page=x", "page=%C2%B2", "page=0", "sort=text", "page=1&page=2")
            ]
    assert first.text.count('href="/search/queries/') == 100
    assert "(105)" in first.text
    assert 'href="/search/queries?page=2"' in first.text
    assert second.text.count('href="/search/queries/') == 5
    assert past.status_code == 404
    assert [response.status_code for response in bad] == [400] * 5
