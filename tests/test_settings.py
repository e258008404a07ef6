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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL: source 'data_1': dsn is not a database URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "dsn must be a postgresql:// URL"),
        ({"DATA_2_URL": "postgresql://u@h:port/db"}, "DATA_2_URL: source 'data_2'"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
    ],
)
def test_bad_database_urls_and_log_level_are_rejected(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_serve_refuses_bad_configuration_with_a_clear_message_and_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.__main__ import main

    monkeypatch.setenv("DATABASE_URL", "mysql://u@h/db")
    assert main(["serve"]) == 2
    assert "configuration error: DATABASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve"])
    assert exit_info.value.code == 2
    assert "$PORT" in capsys.readouterr().err
