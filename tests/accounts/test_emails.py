"""One form of every email to show, and one caseless key for uniqueness and lookup: the pure
rules (``accounts.emails``), and on a real PostgreSQL through the app: addresses whose lower
case differs between Python and PostgreSQL register and then log in, uniqueness is caseless
by Unicode's rules (``ß`` and ``SS``, ``ς`` and ``Σ``, ``ﬀ`` and ``FF`` are one letter),
whitespace is dropped the same way on register and log-in (API and web), and ``schema.sql``
with the accounts' start moves an existing database to the rule without losing a row."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.accounts.emails import InvalidEmailError, email_forms, email_key, normalize_email
from service.accounts.passwords import Passwords
from service.accounts.seeding import SeedPlan
from service.accounts.store import load_users
from service.accounts.users_file import NewUser, UsersFileError, parse_users
from service.platform.dbinit import apply_sql_files, default_sql_files
from tests.support.accounts_app import PASSWORD, Browser, accounts_app
from tests.support.pg_admin import admin

# Greek capitals (the last a sigma: in Python its lower case at the end of a word is the
# final sigma; in PostgreSQL the plain sigma, or no change at all, by locale) and a Turkish
# dotted capital I (in Python "i" and a combining dot, two characters).
GREEK = "x\u039f\u0394\u039f\u03a3@example.com"
DOTTED_I = "x\u0130@example.com"


@pytest.mark.parametrize(
    ("raw", "stored", "key"),
    [
        (" X@Example.COM\t", "x@example.com", "x@example.com"),
        (GREEK, "x\u03bf\u03b4\u03bf\u03c2@example.com", "x\u03bf\u03b4\u03bf\u03c3@example.com"),
        (DOTTED_I, "xi\u0307@example.com", "xi\u0307@example.com"),
        ("Stra\u00dfe@B\u00dcCHER.de", "stra\u00dfe@b\u00fccher.de", "strasse@b\u00fccher.de"),
        ("x@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "x@example.com", "x@example.com"),
        ("\ufb00@example.com", "\ufb00@example.com", "ff@example.com"),  # the ligature ff
    ],
)
def test_an_email_is_stored_stripped_lowered_and_normalised(
    raw: str, stored: str, key: str
) -> None:
    assert normalize_email(raw) == stored  # what is shown
    assert email_key(raw) == email_key(stored) == key  # what is unique, and looked up


#: Addresses that differ in case only, by Unicode's caseless matching, though their lower
#: case differs (Python's ``str.lower``, and PostgreSQL's ``lower()``).
TWINS = [
    ("\u03c3\u03c3@example.com", "\u03a3\u03a3@example.com"),  # sigmas; lower() ends in a final one
    ("\u00df@example.com", "SS@example.com"),  # sharp s
    ("\u1e9e@example.com", "ss@example.com"),  # capital sharp s
    ("\ufb00@example.com", "FF@example.com"),  # the ligature ff
    ("\u017f@example.com", "S@example.com"),  # long s
]
TWIN_IDS = ["sigma", "sharp-s", "capital-sharp-s", "ligature-ff", "long-s"]


@pytest.mark.parametrize(("first", "second"), TWINS, ids=TWIN_IDS)
def test_addresses_that_differ_in_case_only_have_one_key(first: str, second: str) -> None:
    assert normalize_email(first) != normalize_email(second)  # each is shown as typed
    assert email_key(first) == email_key(second)


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
def test_the_key_of_the_stored_form_is_the_key(raw: str) -> None:
    """The key register stores is what a log-in with the same text looks up, whether it is
    computed from what was typed, from the stored form or from the key itself; storing
    either again changes nothing (so a row is found however often it is rewritten)."""
    try:
        stored = normalize_email(raw)
    except InvalidEmailError:
        return
    key = email_key(raw)
    assert email_key(stored) == key
    assert email_key(key) == key
    assert normalize_email(stored) == stored
    assert email_forms(raw) == (stored, key)  # what a row stores


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12))
def test_the_key_is_its_own_key(raw: str) -> None:
    """Any text, an address or not (a log-in may be anything): its key's key is its key, so
    a key computed again (by the store, by the throttle) finds the same row."""
    key = email_key(raw)
    assert email_key(key) == key
    assert email_forms(raw)[1] == key


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
    return await login_with(client, email, PASSWORD)


async def login_with(client: Any, email: str, password: str) -> int:
    response = await client.post("/api/login/", json={"email": email, "password": password})
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
@pytest.mark.parametrize("registers_first", ["api", "web"])
@pytest.mark.parametrize(("first", "second"), TWINS, ids=TWIN_IDS)
async def test_addresses_that_differ_in_case_only_register_once(
    app: Any, first: str, second: str, registers_first: str
) -> None:
    """The second spelling is taken on the API (409) and on the web form (400), and either
    spelling logs in as the one user, on both."""
    if registers_first == "api":
        assert (await register(app.test_client(), first))[0] == 201
    else:
        assert (await Browser(app).register(first)).status_code == 302
    status, body = await register(app.test_client(), second)
    assert (status, body["error"]) == (409, "email_taken")
    again = await Browser(app).register(second)
    assert again.status_code == 400
    assert "exists already" in await again.get_data(as_text=True)
    assert [await login(app.test_client(), email) for email in (first, second)] == [200, 200]
    assert [(await Browser(app).login(email)).status_code for email in (first, second)] == [
        302,
        302,
    ]


@pytest.mark.integration
@pytest.mark.parametrize(("first", "second"), TWINS, ids=TWIN_IDS)
async def test_an_address_cannot_change_to_another_users_in_another_case(
    app: Any, first: str, second: str
) -> None:
    client = app.test_client()
    assert (await register(client, first))[0] == 201
    status, me = await register(client, "me@example.com")
    assert status == 201
    tokens = await (
        await client.post("/api/login/", json={"email": "me@example.com", "password": PASSWORD})
    ).get_json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.put("/api/me/", json={"email": second}, headers=auth)).status_code == 409
    browser = Browser(app)
    assert (await browser.login("me@example.com")).status_code == 302
    edited = await browser.submit(f"/users/{me['id']}/edit", email=second, username="")
    assert edited.status_code == 400
    assert "Another account has this email" in await edited.get_data(as_text=True)


@pytest.mark.parametrize(("first", "second"), TWINS, ids=TWIN_IDS)
def test_a_users_file_with_addresses_that_differ_in_case_only_is_refused(
    first: str, second: str
) -> None:
    document = orjson.dumps(
        [{"email": first, "password": "12345678"}, {"email": second, "password": "12345678"}]
    )
    with pytest.raises(UsersFileError, match="repeats user #1"):
        parse_users(document)


@pytest.mark.integration
@pytest.mark.parametrize(("first", "second"), TWINS, ids=TWIN_IDS)
async def test_loading_a_users_file_finds_an_address_taken_caselessly(
    app: Any, empty_db: str, first: str, second: str
) -> None:
    assert (await register(app.test_client(), first))[0] == 201
    with pytest.raises(ExceptionGroup) as refused:  # from trio-asyncio's loop, as in the CLI
        await load_users(empty_db, [NewUser(second, "", "12345678")], Passwords.cheap())
    assert refused.group_contains(UsersFileError, match="already registered", depth=None)


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
    """A database made by the first schema (a unique index on lower(email), emails as
    typed, no key): applying schema.sql lowers them once, swaps the index, adds the key
    column, and is idempotent; the accounts' start gives every row its key."""
    password_hash = await Passwords.cheap().hash(PASSWORD)
    async with admin(empty_db) as conn:
        await conn.execute("ALTER TABLE accounts_users DROP COLUMN IF EXISTS email_key")
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
        assert "(email_key)" in names["accounts_users_caseless_email_unique"]
    async with accounts_app(empty_db).test_app() as test_app:
        client = test_app.test_client()
        assert await login(client, "OLD.USER@example.com") == 200
        assert (await register(client, "SECOND@example.ORG"))[0] == 409
    async with admin(empty_db) as conn:
        keys = await conn.fetch("SELECT email, email_key FROM accounts_users ORDER BY id")
    assert [(row["email"], row["email_key"]) for row in keys] == [
        (email, email)
        for email in ("old.user@example.com", "plain@example.com", "second@example.org")
    ]


#: Rows of a database made before email keys, whose lower-case rule let caseless twins
#: register twice: (stored email, password), by id.
KEYLESS_ROWS = [
    ("\u03c3\u03c3@example.com", PASSWORD),  # two sigmas
    ("\u03c3\u03c2@example.com", "the twin's password"),  # two capital sigmas, lowered
    ("stra\u00dfe@example.com", PASSWORD),  # straße
    ("strasse@example.com", "the twin's password"),  # straße's twin
    ("\ufb00@example.com", PASSWORD),  # the ligature ff, no twin
    ("plain@example.com", PASSWORD),
]


@pytest.mark.integration
async def test_the_accounts_start_keys_an_older_database_and_the_oldest_twin_keeps_the_address(
    empty_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A database made by the schema before email keys (emails unique by lower case only):
    schema.sql adds the key column and its index, the accounts' start gives every row its
    key, and a later caseless twin of an older row is left without one (nobody logs in as
    it; a warning names it), whichever spelling is typed. Idempotent; nothing is lost."""
    passwords = Passwords.cheap()
    async with admin(empty_db) as conn:
        await conn.execute("ALTER TABLE accounts_users DROP COLUMN IF EXISTS email_key")
        for email, password in KEYLESS_ROWS:
            await conn.execute(
                "INSERT INTO accounts_users (email, password_hash) VALUES ($1, $2)",
                email,
                await passwords.hash(password),
            )
    schema, _ = default_sql_files()
    await apply_sql_files(empty_db, [schema])
    for start in range(2):  # idempotent: the second start changes nothing, and warns again
        caplog.clear()
        async with accounts_app(empty_db).test_app() as test_app:
            client = test_app.test_client()
            for typed in (
                "\u03a3\u03a3@example.com",
                "\u03c3\u03c2@example.com",
                "STRASSE@example.com",
            ):
                assert await login(client, typed) == 200, (start, typed)  # the older twin
            twins = [
                await login_with(client, typed, "the twin's password")
                for typed in ("\u03c3\u03c2@example.com", "strasse@example.com")
            ]
            assert twins == [401, 401]
            assert await login(client, "FF@example.com") == 200
            assert await login(client, "Plain@example.com") == 200
            assert (await register(client, "Stra\u00dfe@Example.com"))[0] == 409
        warnings = [r.getMessage() for r in caplog.records if r.name.endswith("email_keys")]
        assert len(warnings) == 1, warnings
        assert "2 users have no email key" in warnings[0]
        assert "(users 2, 4)" in warnings[0]
        async with admin(empty_db) as conn:
            rows = await conn.fetch("SELECT email, email_key FROM accounts_users ORDER BY id")
        assert [(row["email"], row["email_key"]) for row in rows] == [
            ("\u03c3\u03c3@example.com", "\u03c3\u03c3@example.com"),
            ("\u03c3\u03c2@example.com", None),
            ("stra\u00dfe@example.com", "strasse@example.com"),
            ("strasse@example.com", None),
            ("\ufb00@example.com", "ff@example.com"),
            ("plain@example.com", "plain@example.com"),
        ]


@pytest.mark.integration
async def test_an_admin_gives_a_keyless_twin_an_address_of_its_own(empty_db: str) -> None:
    """The way out the warning names: a new address gives the twin its key; it logs in."""
    passwords = Passwords.cheap()
    async with admin(empty_db) as conn:
        await conn.execute("ALTER TABLE accounts_users DROP COLUMN IF EXISTS email_key")
        for email, password in [*KEYLESS_ROWS[:2], ("root@example.com", PASSWORD)]:
            await conn.execute(
                "INSERT INTO accounts_users (email, password_hash, is_admin) VALUES ($1, $2, $3)",
                email,
                await passwords.hash(password),
                email.startswith("root"),
            )
    schema, _ = default_sql_files()
    await apply_sql_files(empty_db, [schema])
    async with accounts_app(empty_db).test_app() as test_app:
        root = Browser(test_app)
        assert (await root.login("root@example.com")).status_code == 302
        edited = await root.submit("/users/2/edit", email="twin@example.com", username="")
        assert edited.status_code == 302
        client = test_app.test_client()
        assert await login_with(client, "TWIN@example.com", "the twin's password") == 200
        assert await login(client, "\u03a3\u03a3@example.com") == 200
