"""Sources declared in a TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError, SourceKind

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return path


def test_without_a_file_the_sources_are_the_three_tables() -> None:
    settings = Settings.from_env({})
    assert [(s.name, s.kind, s.table) for s in settings.sources] == [
        ("data_1", SourceKind.ORM, "data_1"),
        ("data_2", SourceKind.SQL, "data_2"),
        ("data_3", SourceKind.SQL, "data_3"),
    ]


def test_mixed_file_is_read_with_own_timeouts_and_http_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[source]]
        name = "users"
        kind = "orm"
        table = "users_shard_1"
        timeout_s = 1

        [[source]]
        name = "orders"
        kind = "sql"
        dsn = "postgresql://orders-db/orders"
        table = "orders"

        [[source]]
        name = "prices"
        kind = "http"
        url = "https://prices.internal/v1/all.json"
        timeout_s = 0.25
        follow_redirects = true
        max_body_bytes = 2048
        """,
    )
    settings = Settings.from_env(
        {"SOURCES_FILE": str(path), "DATABASE_URL": "postgresql://main/db"}
    )
    users, orders, prices = settings.sources
    assert (users.kind, users.table, users.dsn, users.timeout_s) == (
        SourceKind.ORM,
        "users_shard_1",
        "postgresql://main/db",
        1.0,
    )
    assert (orders.kind, orders.dsn) == (SourceKind.SQL, "postgresql://orders-db/orders")
    assert (prices.kind, prices.url, prices.follow_redirects) == (
        SourceKind.HTTP,
        "https://prices.internal/v1/all.json",
        True,
    )
    assert settings.source_timeouts() == {"users": 1.0, "prices": 0.25}
    assert settings.max_body_bytes_for(prices) == 2048
    assert settings.max_body_bytes_for(users) == settings.http_max_body_bytes
    assert settings.statement_timeout_ms_for(users) == 2000
    assert settings.statement_timeout_ms_for(orders) == 3000
    assert not settings.needs_embedded_database


def test_http_only_file_needs_no_database() -> None:
    settings = Settings.from_env({"SOURCES_FILE": str(EXAMPLES / "http-sources.toml")})
    assert [s.kind for s in settings.sources] == [SourceKind.HTTP] * 3
    assert not settings.needs_embedded_database


def test_shipped_mixed_example_is_valid() -> None:
    settings = Settings.from_env({"SOURCES_FILE": str(EXAMPLES / "mixed-sources.toml")})
    assert [s.kind for s in settings.sources] == [SourceKind.ORM, SourceKind.SQL, SourceKind.HTTP]
    assert settings.needs_embedded_database


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one"),
        ("[[source]]\nkind = 'sql'\ntable = 't'", "name is required"),
        ("[[source]]\nname = 'a'\nkind = 'mongo'", "kind must be one of orm, sql, http"),
        ("[[source]]\nname = 'a'\nkind = 'sql'", "table must be a plain SQL identifier"),
        ("[[source]]\nname = 'a'\nkind = 'sql'\ntable = 'x; drop'", "plain SQL identifier"),
        ("[[source]]\nname = 'a'\nkind = 'http'", "absolute http"),
        ("[[source]]\nname = 'a'\nkind = 'http'\nurl = 'ftp://x/y'", "absolute http"),
        ("[[source]]\nname = 'a'\nkind = 'http'\nurl = 'http://x/'\ntable = 't'", "not a dsn"),
        ("[[source]]\nname = 'a'\nkind = 'sql'\ntable = 't'\nurl = 'http://x/'", "not a url"),
        ("[[source]]\nname = 'a'\nkind = 'sql'\ntable = 't'\ntimout_s = 1", "unknown key"),
        ("[[source]]\nname = 'a'\nkind = 'sql'\ntable = 't'\ntimeout_s = 0", "timeout_s must"),
        ("[[source]]\nname = 'a'\nkind = 'sql'\ntable = 't'\ntimeout_s = 'x'", "wrong type"),
        ("[[source]]\nname = 'a b'\nkind = 'sql'\ntable = 't'", "must be a token"),
        ("sources = 1", "unknown top-level"),
        ("[[source]\nname=", "not valid TOML"),
        ("[[source]]\nname = 'a'\nkind = 'http'\nurl = 'http://[::1/x'", "not a valid URL"),
        ("[[source]]\nname = 'a'\nkind = 'http'\nurl = 'http://h:99999/x'", "not a valid URL"),
        ("[[source]]\nname='a'\nkind='sql'\ntable='t'\ndsn='postgresql://h:99999/x'", "port"),
        (
            "[[source]]\nname='a'\nkind='sql'\ntable='t'\n[[source]]\nname='a'\nkind='sql'\ntable='u'",
            "unique",
        ),
    ],
)
def test_bad_file_is_rejected_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"SOURCES_FILE": str(path)})


def test_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[[source]]\nname = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(SettingsError, match="not UTF-8"):
        Settings.from_env({"SOURCES_FILE": str(path)})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        Settings.from_env({"SOURCES_FILE": str(tmp_path / "nope.toml")})
