"""The accounts' data layer, without a database: users files, fake users, password hashing."""

from __future__ import annotations

import orjson
import pytest
import trio

from service.accounts.emails import InvalidEmailError, normalize_email
from service.accounts.fake_users import fake_users
from service.accounts.passwords import Passwords
from service.accounts.users_file import (
    NewUser,
    UsersFileError,
    dump_users,
    parse_users,
)


def test_fake_users_are_reproducible_from_their_seed_and_differ_across_seeds() -> None:
    assert fake_users(30, seed=7) == fake_users(30, seed=7)
    assert fake_users(30, seed=7) != fake_users(30, seed=8)


def test_fake_users_have_distinct_valid_emails_and_loadable_passwords() -> None:
    users = fake_users(200, seed=1)
    assert len(users) == 200
    assert len({user.email.lower() for user in users}) == 200
    assert parse_users(dump_users(users)) == users  # every one passes the file's rules


def test_fake_users_refuse_a_negative_count() -> None:
    assert fake_users(0) == []
    with pytest.raises(ValueError, match="count"):
        fake_users(-1)


def test_a_users_file_round_trips() -> None:
    users = [
        NewUser("A@example.com", "ann", "correct horse", True),
        NewUser("b@x.io", "", "12345678"),
    ]
    assert parse_users(dump_users(users)) == users


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"email": "a@b.co"}', "must be a JSON array of users, not dict"),
        (b"[1]", "user #1: must be an object"),
        (b'[{"email": "a@b.co"}]', "user #1: password is required"),
        (b'[{"password": "12345678"}]', "user #1: email is required"),
        (b'[{"email": "nope", "password": "12345678"}]', "user #1: 'nope' is not an email"),
        (b'[{"email": "a@b.co", "password": "short"}]', "password must have 8 to 1,024 characters"),
        (b'[{"email": "a@b.co", "password": "12345678", "admin": true}]', "unknown key 'admin'"),
        (b'[{"email": "a@b.co", "password": "12345678", "is_admin": "yes"}]', "is_admin must be"),
        (b'[{"email": true, "password": "12345678"}]', "email must be a str"),
        (
            b'[{"email": "a@b.co", "password": "12345678", "username": "x\\ny"}]',
            "username must have at most 150 characters, none of them a control",
        ),
        (
            b'[{"email": "a@b.co", "password": "12345678"},'
            b' {"email": "A@B.CO", "password": "12345678"}]',
            "user #2: email 'A@B.CO' repeats user #1's",
        ),
    ],
)
def test_a_bad_users_file_is_refused_with_where_and_why(document: bytes, message: str) -> None:
    with pytest.raises(UsersFileError, match=message):
        parse_users(document)


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("user@example.com", True),
        ("first.last+tag@sub.example.org", True),
        ("no-at.example.com", False),
        ("two@@example.com", False),
        ("user@nodot", False),
        ("sp ace@example.com", False),
        ("a@b.c" + "o" * 250, False),  # over 254 characters
        ("nul\x00@example.com", False),
        ("tab\t@example.com", False),
        ("user@localhost", False),  # special-use domains are refused
        ("user@example.test", False),
    ],
)
def test_valid_email(email: str, valid: bool) -> None:
    try:
        normalize_email(email)
    except InvalidEmailError:
        assert not valid
    else:
        assert valid


async def test_passwords_are_argon2id_salted_and_checked() -> None:
    passwords = Passwords.cheap()
    first = await passwords.hash("correct horse")
    second = await passwords.hash("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert await passwords.verify(first, "correct horse")
    assert not await passwords.verify(first, "wrong horse")
    assert not await passwords.verify("not a hash", "correct horse")


async def test_hashing_runs_off_the_event_loop() -> None:
    """While a (real-cost) hash runs, other tasks keep running."""
    passwords = Passwords()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        await passwords.hash("correct horse battery staple")
        nursery.cancel_scope.cancel()
    assert ticks > 3


def test_dumped_file_is_indented_json() -> None:
    data = dump_users([NewUser("a@b.co", "a", "12345678")])
    assert data.startswith(b"[\n")
    assert orjson.loads(data) == [
        {"email": "a@b.co", "username": "a", "password": "12345678", "is_admin": False}
    ]
