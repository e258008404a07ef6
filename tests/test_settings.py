from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError, SourceKind


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.source_timeout_s == 2.0
    assert settings.pool_max_size == 10
    assert settings.statement_timeout_ms is None
    assert settings.statement_timeout_ms_for(settings.sources[0]) == 3000
    assert settings.embedded_pg_dir == Path(".pgdata")
    assert [(s.name, s.kind, s.dsn) for s in settings.sources] == [
        ("data_1", SourceKind.ORM, None),
        ("data_2", SourceKind.SQL, None),
        ("data_3", SourceKind.SQL, None),
    ]
    assert settings.needs_embedded_database


def test_per_source_urls_override_database_url() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://main/db", "DATA_3_URL": "postgresql://other/db"}
    )
    assert [s.dsn for s in settings.sources] == [
        "postgresql://main/db",
        "postgresql://main/db",
        "postgresql://other/db",
    ]
    assert not settings.needs_embedded_database


def test_timeout_and_pool_size_from_environment() -> None:
    settings = Settings.from_env(
        {"SOURCE_TIMEOUT_S": "0.5", "POOL_MAX_SIZE": "3", "LOG_LEVEL": "debug"}
    )
    assert settings.source_timeout_s == 0.5
    assert settings.pool_max_size == 3
    assert settings.statement_timeout_ms_for(settings.sources[1]) == 1500
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SOURCE_TIMEOUT_S": "soon"}, "SOURCE_TIMEOUT_S must be a number"),
        ({"SOURCE_TIMEOUT_S": "0"}, "SOURCE_TIMEOUT_S must be a finite number > 0"),
        ({"POOL_MAX_SIZE": "2.5"}, "POOL_MAX_SIZE must be an integer"),
        ({"POOL_MAX_SIZE": "0"}, "POOL_MAX_SIZE must be >= 1"),
    ],
)
def test_bad_values_are_rejected_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.source_timeout_s = 1.0  # type: ignore[misc]
