"""One form of every email, for storage and lookup: the pure rule (``accounts.emails``), and
on a real PostgreSQL through the app: addresses whose lower case differs between Python and
PostgreSQL register and then log in, uniqueness stays case-insensitive, whitespace is
dropped the same way on register and log-in (API and web), and ``schema.sql`` moves an
existing database to the rule without losing a row."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.accounts.emails import InvalidEmailError, email_key, normalize_email
from service.accounts.passwords import Passwords
from service.accounts.seeding import SeedPlan
from service.accounts.store import load_users
from service.accounts.users_file import NewUser, UsersFileError, parse_users
from service.platform.dbinit import apply_sql_files, default_sql_files

from .test_accounts_pages import PASSWORD, Browser, accounts_app
from .test_faults import admin

# Greek capitals (the last a sigma: in Python its lower case at the end of a word is the
# final sigma; in PostgreSQL the plain sigma, or no change at all, by locale) and a Turkish
# dotted capital I (in Python "i" and a combining dot, two characters).
GREEK = "x\u039f\u0394\u039f\u03a3@example.com"
DOTTED_I = "x\u0130@example.com"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (" X@Example.COM\t", "x@example.com"),
        (GREEK, "x\u03bf\u03b4\u03bf\u03c2@example.com"),
        (DOTTED_I, "xi\u0307@example.com"),
        ("Stra\u00dfe@B\u00dcCHER.de", "stra\u00dfe@b\u00fccher.de"),
        ("x@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "x@example.com"),  # fullwidth
    ],
)
def test_an_email_is_stored_stripped_lowered_and_normalised(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored
    assert email_key(raw) == stored  # a log-in finds it, typed the same way


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("us\x00er@example.com", "U+0000"),
        ("user\x01@example.com", "U+0001"),
        ("u\ud800@example.com", "U+D800"),
        ("u\u200d@example.com", "ZERO WIDTH JOINER"),
        ("user@localhost", "period"),
        ("user@example.test", "special-use"),
        ("user@[127.0.0.1]", "bracketed"),
        ("two@@example.com", "@"),
        ("a" * 250 + "@example.com", "254"),
    ],
)
def test_a_new_email_is_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(InvalidEmailError, match=re.escape(why)):
        normalize_email(raw)


@pytest.mark.parametrize("raw", ["us\x00er@example.com", "u\ud800@example.com", "\x7f"])
def test_a_lookup_refuses_only_characters_no_address_has(raw: str) -> None:
    with pytest.raises(InvalidEmailError, match="control character or a lone surrogate"):
        email_key(raw)
    assert email_key(" Not An Email ") == "not an email"  # found if so stored; else no one


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.emails(),
        st.builds(
            lambda local, domain: f"{local}@{domain}",
            st.text(st.characters(), min_size=1, max_size=12),
            st.sampled_from(["example.com", "EXAMPLE.org", "b\u00fccher.de", "x.io"]),
        ),
    )
)
def test_the_stored_form_is_its_own_key(raw: str) -> None:
    """What register stores is what a log-in with the same text looks up, and storing it
    again changes nothing (so a row is found however often it is rewritten)."""
    try:
        stored = normalize_email(raw)
    except InvalidEmailError:
        return
    assert email_key(raw) == stored
    assert normalize_email(stored) == stored
    assert email_key(stored) == stored


def test_every_other_entry_point_uses_the_same_form() -> None:
    assert SeedPlan.from_env({"ADMIN_EMAIL": " Root@Example.COM "}).admin_email == (
        "root@example.com"
    )
    document = f'[{{"email": "{GREEK}", "password": "12345678"}},'
    document += ' {"email": "x\u03bf\u03b4\u03bf\u03c2@example.com", "password": "12345678"}]'
    with pytest.raises(UsersFileError, match="repeats user #1"):
        parse_users(document.encode())


@pytest.fixture
async def app(empty_db: str) -> AsyncIterator[Any]:
    async with accounts_app(empty_db).test_app() as test_app:
        yield test_app


async def register(client: Any, email: str) -> tuple[int, Any]:
    response = await client.post("/api/register/", json={"email": email, "password": PASSWORD})
    return response.status_code, await response.get_json()


async def login(client: Any, email: str) -> int:
    response = await client.post("/api/login/", json={"email": email, "password": PASSWORD})
    return int(response.status_code)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("registered", "logs_in_as"),
    [
        (GREEK, [GREEK, "X\u039f\u0394\u039f\u03a3@EXAMPLE.COM",
                 "x\u03bf\u03b4\u03bf\u03c2@example.com"]),
        (DOTTED_I, [DOTTED_I, " X\u0130@Example.com "]),
        ("Mixed.Case@Example.COM", ["mixed.case@example.com", "  MIXED.case@example.com\n"]),
    ],
    ids=["greek", "dotted-i", "ascii"],
)  # fmt: skip
async def test_an_address_registered_logs_in_however_it_is_cased(
    app: Any, registered: str, logs_in_as: list[str]
) -> None:
    client = app.test_client()
    status, body = await register(client, registered)
    assert status == 201, body
    assert [await login(client, email) for email in logs_in_as] == [200] * len(logs_in_as)
    assert body["email"] == normalize_email(registered)  # the stored form


@pytest.mark.integration
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("X@Example.com", "x@example.com"),
        ("x@example.com", "  X@EXAMPLE.COM "),
        (GREEK, "x\u03bf\u03b4\u03bf\u03c2@example.com"),
        (DOTTED_I, "X\u0130@EXAMPLE.COM"),
    ],
)
async def test_emails_stay_unique_case_insensitively(app: Any, first: str, second: str) -> None:
    client = app.test_client()
    assert (await register(client, first))[0] == 201
    status, body = await register(client, second)
    assert (status, body["error"]) == (409, "email_taken")


@pytest.mark.integration
async def test_put_me_stores_the_same_form_and_keeps_emails_unique(app: Any) -> None:
    client = app.test_client()
    assert (await register(client, "other@example.com"))[0] == 201
    assert (await register(client, "me@example.com"))[0] == 201
    tokens = await (
        await client.post("/api/login/", json={"email": "me@example.com", "password": PASSWORD})
    ).get_json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    taken = await client.put("/api/me/", json={"email": " OTHER@example.com "}, headers=auth)
    assert taken.status_code == 409
    changed = await client.put("/api/me/", json={"email": f" {GREEK} "}, headers=auth)
    assert (await changed.get_json())["email"] == "x\u03bf\u03b4\u03bf\u03c2@example.com"
    assert await login(client, "X\u039f\u0394\u039f\u03a3@example.com") == 200


@pytest.mark.integration
async def test_the_web_forms_and_the_api_share_the_rule(app: Any) -> None:
    web = Browser(app)
    response = await web.register(f"  {DOTTED_I}  ")
    assert response.status_code == 302
    assert await login(app.test_client(), "xi\u0307@EXAMPLE.com") == 200
    assert (await Browser(app).login(f" {DOTTED_I} ")).status_code == 302  # stripped too
    assert (await register(app.test_client(), "Web@Example.com"))[0] == 201
    assert (await Browser(app).login(" web@example.COM ")).status_code == 302
    again = await Browser(app).register("WEB@example.com")
    assert again.status_code == 400
    assert "exists already" in await again.get_data(as_text=True)


@pytest.mark.integration
async def test_loading_a_users_file_finds_an_address_taken_in_another_case(
    app: Any, empty_db: str
) -> None:
    assert (await register(app.test_client(), GREEK))[0] == 201
    new = [NewUser("X\u03bf\u03b4\u03bf\u03c2@EXAMPLE.com", "", "12345678")]
    with pytest.raises(ExceptionGroup) as refused:  # from trio-asyncio's loop, as in the CLI
        await load_users(empty_db, new, Passwords.cheap())
    assert refused.group_contains(UsersFileError, match="already registered", depth=None)
    assert (
        await load_users(empty_db, [NewUser(" New@Example.com", "", "12345678")], Passwords.cheap())
        == 1
    )
    assert await login(app.test_client(), "new@example.com") == 401  # the password differs
    async with admin(empty_db) as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM accounts_users WHERE email = 'new@example.com'"
            )
            == 1
        )


@pytest.mark.integration
async def test_schema_sql_moves_an_older_database_to_the_rule_and_loses_nothing(
    empty_db: str,
) -> None:
    """A database made by the previous schema (a unique index on lower(email), emails as
    typed): applying schema.sql lowers them once, swaps the index, and is idempotent."""
    password_hash = await Passwords.cheap().hash(PASSWORD)
    async with admin(empty_db) as conn:
        await conn.execute("DROP INDEX accounts_users_email_unique")
        await conn.execute(
            "CREATE UNIQUE INDEX accounts_users_email_key ON accounts_users (lower(email))"
        )
        for email in ("Old.User@Example.COM", "plain@example.com", "Second@Example.org"):
            await conn.execute(
                "INSERT INTO accounts_users (email, password_hash) VALUES ($1, $2)",
                email,
                password_hash,
            )
    schema, _ = default_sql_files()
    for _ in range(2):  # idempotent
        await apply_sql_files(empty_db, [schema])
        async with admin(empty_db) as conn:
            rows = await conn.fetch("SELECT email FROM accounts_users ORDER BY id")
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts_users'"
            )
        assert [row["email"] for row in rows] == [
            "old.user@example.com",
            "plain@example.com",
            "second@example.org",
        ]
        names = {row["indexname"]: row["indexdef"] for row in indexes}
        assert "accounts_users_email_key" not in names
        assert "(email)" in names["accounts_users_email_unique"]
    async with accounts_app(empty_db).test_app() as test_app:
        client = test_app.test_client()
        assert await login(client, "OLD.USER@example.com") == 200
        assert (await register(client, "SECOND@example.ORG"))[0] == 409
