"""Sources-file rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.platform.source_config import (
    MAX_BODY_BYTES,
    SettingsError,
    SourceKind,
    SourceSettings,
    SourcesFile,
    load_sources_file,
)

HTTP_SOURCE = '[[source]]\nname = "a"\nkind = "http"\nurl = "http://h/a"\n'


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> SourcesFile:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return load_sources_file(path, env or {})


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, text, env)
    return str(caught.value)


@pytest.mark.parametrize("key", ["dsn", "url"])
def test_a_control_character_is_named_with_its_key(key: str) -> None:
    fields = {"dsn": None, "url": None, key: "x\ny"}
    with pytest.raises(SettingsError, match=f"^source 'a': {key} must not contain"):
        SourceSettings("a", SourceKind.HTTP, **fields)  # type: ignore[arg-type]


def test_the_timeout_message_gives_the_reason() -> None:
    with pytest.raises(SettingsError) as caught:
        SourceSettings("a", SourceKind.HTTP, url="http://h/a", timeout_s=0)
    assert str(caught.value).endswith("<= 2147482 (PostgreSQL's timeouts are int32 milliseconds)")


@pytest.mark.parametrize("size", [1, MAX_BODY_BYTES])
def test_max_body_bytes_bounds_are_inclusive(size: int) -> None:
    source = SourceSettings("a", SourceKind.HTTP, url="http://h/a", max_body_bytes=size)
    assert source.max_body_bytes == size


def test_dsn_port_65535_is_accepted_and_65536_refused() -> None:
    SourceSettings("a", SourceKind.SQL, table="t", dsn="postgresql://u@h:65535/db")
    with pytest.raises(SettingsError, match=r"dsn port must be 1-65535, got 65536$"):
        SourceSettings("a", SourceKind.SQL, table="t", dsn="postgresql://u@h:65536/db")


def test_a_foreign_dsn_scheme_is_named() -> None:
    with pytest.raises(SettingsError, match=r"got 'mysql'$"):
        SourceSettings("a", SourceKind.SQL, table="t", dsn="mysql://u@h/db")


def test_serve_demo_files_is_read_and_defaults_to_false(tmp_path: Path) -> None:
    assert load(tmp_path, HTTP_SOURCE).serve_demo_files is False
    assert load(tmp_path, "serve_demo_files = true\n" + HTTP_SOURCE).serve_demo_files is True


def test_serve_demo_files_must_be_a_boolean(tmp_path: Path) -> None:
    message = error_of(tmp_path, "serve_demo_files = 1\n" + HTTP_SOURCE)
    assert message.endswith(": serve_demo_files must be true or false")


def test_source_that_is_not_an_array_needs_at_least_one_entry(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'source = "x"\n').endswith(": needs at least one [[source]] entry")


def test_an_entry_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    assert error_of(tmp_path, "source = [1]\n").endswith("[[source]] #1: must be a table")


def test_an_unknown_key_is_named_with_the_known_ones(tmp_path: Path) -> None:
    message = error_of(tmp_path, HTTP_SOURCE + "colour = 1\n")
    assert message.endswith(
        ": unknown key 'colour' (known: name, kind, dsn, table, url, timeout_s,"
        " follow_redirects, max_body_bytes)"
    )


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    assert error_of(tmp_path, HTTP_SOURCE + "timeout_s = 'x'\n").endswith(
        ": timeout_s has the wrong type (str)"
    )


def test_a_control_character_in_database_url_is_named(tmp_path: Path) -> None:
    text = '[[source]]\nname = "a"\nkind = "sql"\ntable = "t"\n'
    message = error_of(tmp_path, text, {"DATABASE_URL": "postgresql://h/db\n"})
    assert message.startswith("DATABASE_URL must not contain control characters")


def test_redirects_are_not_followed_unless_the_file_says_so(tmp_path: Path) -> None:
    (source,) = load(tmp_path, HTTP_SOURCE).sources
    assert source.follow_redirects is False
