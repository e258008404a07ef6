"""Sources declared in a TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.platform.settings import Settings, SettingsError, SourceKind, SourceSettings
from tests.support import ROOT

EXAMPLES = ROOT / "examples"


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


def test_http_only_file_still_needs_a_database_for_the_accounts() -> None:
    settings = Settings.from_env({"SOURCES_FILE": str(EXAMPLES / "http-sources.toml")})
    assert [s.kind for s in settings.sources] == [SourceKind.HTTP] * 3
    assert settings.needs_embedded_database
    given = Settings.from_env(
        {"SOURCES_FILE": str(EXAMPLES / "http-sources.toml"), "DATABASE_URL": "postgresql://h/db"}
    )
    assert not given.needs_embedded_database


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


PG_MAX_MS = 2**31 - 1  # PostgreSQL's timeouts are int32 milliseconds


@pytest.mark.parametrize(
    ("name", "table"),
    [("data_1\n", "t"), ("a", "data_1\n"), ("a\x00", "t"), ("a", "t\x7f")],
)
def test_a_trailing_newline_or_control_character_in_name_or_table_is_rejected(
    name: str, table: str
) -> None:
    with pytest.raises(SettingsError, match=r"source .*: (name|table) must not contain control"):
        SourceSettings(name, SourceKind.SQL, table=table)


@pytest.mark.parametrize("key", ["name", "table", "dsn", "url", "kind"])
@pytest.mark.parametrize("char", ["\\n", "\\r", "\\t", "\\u0000", "\\u007f", "\\u0085", "\\u001b"])
def test_a_control_character_in_any_string_of_the_file_is_rejected_naming_the_key(
    tmp_path: Path, key: str, char: str
) -> None:
    values = {
        "name": "a",
        "kind": "http",
        "url": "http://h/x",
        "table": None,
        "dsn": None,
    }
    if key in ("table", "dsn"):
        values.update(kind="sql", url=None, table="t", dsn="postgresql://h/db")
    value = values[key]
    assert value is not None
    values[key] = value[:1] + char + value[1:]
    text = "[[source]]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items() if v is not None)
    path = write(tmp_path, text)
    with pytest.raises(SettingsError, match=rf"\[\[source\]\] #1: {key} must not contain control"):
        Settings.from_env({"SOURCES_FILE": str(path)})


@pytest.mark.parametrize(
    "dsn", ["postgresql+asyncpg://h/db", "postgresql+psycopg://u:pw@h/db", "postgres+x://h/db"]
)
def test_a_dsn_with_a_driver_suffix_is_rejected(tmp_path: Path, dsn: str) -> None:
    path = write(tmp_path, f"[[source]]\nname='a'\nkind='sql'\ntable='t'\ndsn='{dsn}'")
    with pytest.raises(SettingsError, match=r"#1: .*dsn must be a postgresql:// URL.*no \+driver"):
        Settings.from_env({"SOURCES_FILE": str(path)})


@pytest.mark.parametrize("dsn", ["postgresql://u:pw@h:5432/db", "postgres://h/db"])
def test_a_plain_postgresql_dsn_is_accepted(tmp_path: Path, dsn: str) -> None:
    path = write(tmp_path, f"[[source]]\nname='a'\nkind='sql'\ntable='t'\ndsn='{dsn}'")
    assert Settings.from_env({"SOURCES_FILE": str(path)}).sources[0].dsn == dsn


def test_database_url_used_by_a_file_source_is_checked_under_its_own_name(tmp_path: Path) -> None:
    path = write(tmp_path, "[[source]]\nname='a'\nkind='sql'\ntable='t'")
    env = {"SOURCES_FILE": str(path), "DATABASE_URL": "postgresql+asyncpg://h/db"}
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: .*no \+driver"):
        Settings.from_env(env)


@pytest.mark.parametrize("timeout", ["2147483", "1e7", "1e306", "inf", "nan", "-1"])
def test_a_source_timeout_past_postgresqls_limit_or_not_finite_is_rejected(
    tmp_path: Path, timeout: str
) -> None:
    path = write(tmp_path, f"[[source]]\nname='a'\nkind='sql'\ntable='t'\ntimeout_s={timeout}")
    with pytest.raises(SettingsError, match=r"#1: source 'a': timeout_s must be a finite number"):
        Settings.from_env({"SOURCES_FILE": str(path)})


def test_the_largest_source_timeout_keeps_the_statement_timeout_in_range(tmp_path: Path) -> None:
    path = write(tmp_path, "[[source]]\nname='a'\nkind='sql'\ntable='t'\ntimeout_s=2147482")
    settings = Settings.from_env({"SOURCES_FILE": str(path)})
    assert 0 < settings.statement_timeout_ms_for(settings.sources[0]) <= PG_MAX_MS


def test_a_huge_max_body_bytes_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[[source]]\nname='a'\nkind='http'\nurl='http://h/'\nmax_body_bytes=1e12"
    )
    with pytest.raises(SettingsError, match="wrong type"):
        Settings.from_env({"SOURCES_FILE": str(path)})
    path = write(
        tmp_path,
        "[[source]]\nname='a'\nkind='http'\nurl='http://h/'\nmax_body_bytes=2_000_000_000_000",
    )
    with pytest.raises(SettingsError, match=r"#1: source 'a': max_body_bytes must be >= 1 and <="):
        Settings.from_env({"SOURCES_FILE": str(path)})
