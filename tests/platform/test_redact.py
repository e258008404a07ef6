"""Secrets and runaway values kept out of messages: URLs, DSNs and bounded reprs."""

from __future__ import annotations

import time

import pytest

from service.platform.redact import MAX_VALUE_CHARS, redact_text, redact_url, short_repr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://svc:s3cret@host/x", "http://host/x"),
        ("http://svc@host/x", "http://host/x"),
        ("http://svc:s3cret@host:8080/x", "http://host:8080/x"),
        ("postgresql://app:pw@db.internal:5432/orders", "postgresql://db.internal:5432/orders"),
        ("postgresql://u:p@ss@h/db", "postgresql://h/db"),  # '@' in the password
        ("http://u:pw@/x", "http:///x"),  # userinfo without a host
        ("https://host/plain/path", "https://host/plain/path"),
    ],
)
def test_userinfo_is_dropped_and_host_port_path_kept(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://u:pw@[::1]/x", "http://[::1]/x"),
        ("http://u:pw@[2001:db8::7]:443/x?k=v", "http://[2001:db8::7]:443/x?k=***"),
        ("http://[fe80::1%25eth0]:80/x", "http://[fe80::1%25eth0]:80/x"),
        ("http://127.0.0.1:80/x", "http://127.0.0.1:80/x"),
    ],
)
def test_ipv6_hosts_keep_their_brackets(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/x?api_key=abc&a=1", "http://h/x?api_key=***&a=***"),
        ("http://h/x?api_key=", "http://h/x?api_key=***"),
        ("http://h/x?a=1&&b=2", "http://h/x?a=***&&b=***"),
        ("http://h/x?a=1&", "http://h/x?a=***&"),
        ("http://h/x?=v", "http://h/x?=***"),
        ("http://h/x?", "http://h/x"),
        ("http://h/x?k=a=b", "http://h/x?k=***"),
        ("http://h/x?k=v;other=secret", "http://h/x?k=***"),
    ],
)
def test_every_query_value_is_masked_and_the_keys_kept(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://h/x?s3cretToken", "http://h/x?a=1&s3cretToken", "http://h/x?s3cretToken&b=2"]
)
def test_a_query_pair_without_a_value_is_masked_as_a_whole(url: str) -> None:
    # Some APIs take a bare token as the query (``?<token>``): the "key" is the secret.
    assert "s3cretToken" not in redact_url(url)
    assert "***" in redact_url(url)


def test_the_fragment_is_dropped() -> None:
    assert redact_url("http://h/x?a=1#access_token=s3cret") == "http://h/x?a=***"
    assert redact_url("http://h/x#s3cret") == "http://h/x"


@pytest.mark.parametrize(
    "url", ["http://h:99999/x", "http://u:pw@h:port/x", "http://[::1/x", "http://user:s3cret"]
)
def test_an_unparsable_url_is_replaced_as_a_whole(url: str) -> None:
    assert redact_url(url) == "<unparsable URL>"


def test_text_with_several_urls_and_dsns_keeps_everything_else() -> None:
    text = (
        "GET http://svc:s3cretPW@host/x?api_key=abc failed; "
        "fallback postgresql+asyncpg://app:dbpass@db:5432/orders?sslmode=require "
        "and 'https://u:p2@[::1]:8443/y' too"
    )
    assert redact_text(text) == (
        "GET http://host/x?api_key=*** failed; "
        "fallback postgresql+asyncpg://db:5432/orders?sslmode=*** "
        "and 'https://[::1]:8443/y' too"
    )


def test_text_without_urls_is_unchanged() -> None:
    assert redact_text("connection refused (errno 111): host:5432") == (
        "connection refused (errno 111): host:5432"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(see http://h/x?k=v).", "(see http://h/x?k=***)."),
        ("at http://u:pw@h/x, retrying", "at http://h/x, retrying"),
        ("url: http://h/x?k=v; next", "url: http://h/x?k=***; next"),
    ],
)
def test_punctuation_after_a_url_in_text_is_kept(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_short_repr_of_small_values_is_their_repr() -> None:
    assert short_repr("abc") == "'abc'"
    assert short_repr(42) == "42"
    assert short_repr(None) == "None"
    assert short_repr("a\nb") == "'a\\nb'"  # control characters stay escaped


@pytest.mark.parametrize(
    "value",
    [
        "x" * 200_000,
        b"y" * 200_000,
        list(range(100_000)),
        {str(i): "v" * 1000 for i in range(1000)},
        [[["deep" * 1000]]],
        10**10_000,  # too many digits for int -> str
        -(10**100),
    ],
    ids=["str", "bytes", "list", "dict", "nested", "huge-int", "long-int"],
)
def test_short_repr_is_bounded(value: object) -> None:
    text = short_repr(value)
    assert 0 < len(text) <= MAX_VALUE_CHARS


def test_short_repr_of_a_long_string_shows_both_ends() -> None:
    text = short_repr("begin" + "x" * 10_000 + "end")
    assert text.startswith("'begin")
    assert text.endswith("end'")
    assert "..." in text


class _Raises:
    def __repr__(self) -> str:
        raise RuntimeError("hostile")


class _Huge:
    def __repr__(self) -> str:
        return "h" * 1_000_000


class _NotAString:
    def __repr__(self) -> str:
        return 42  # type: ignore[return-value]


class _HostileStr(str):
    def __repr__(self) -> str:
        raise RuntimeError("hostile")


@pytest.mark.parametrize(
    "value",
    [_Raises(), _NotAString(), _HostileStr("x")],
    ids=["raises", "not-a-string", "hostile-str"],
)
def test_short_repr_of_an_unrepresentable_value_names_its_type(value: object) -> None:
    text = short_repr(value)
    assert 0 < len(text) <= MAX_VALUE_CHARS
    assert type(value).__name__ in text


def test_short_repr_of_a_huge_custom_repr_is_cut() -> None:
    text = short_repr(_Huge())
    assert text.startswith("hhh")
    assert len(text) <= MAX_VALUE_CHARS


def test_short_repr_of_a_hostile_value_inside_a_container_is_bounded() -> None:
    text = short_repr([_Raises(), _Huge(), "z" * 10_000])
    assert 0 < len(text) <= MAX_VALUE_CHARS


@pytest.mark.parametrize("text", ["a" * 200_000, "http://" + "." * 200_000 + "a"])
def test_redact_text_takes_linear_time_on_long_text(text: str) -> None:
    # A quadratic pattern took ~20 s here; linear takes milliseconds. The bound is generous.
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 2.0
