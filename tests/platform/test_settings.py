from __future__ import annotations

from pathlib import Path

import pytest

from service.platform.settings import Settings, SettingsError, SourceKind


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
    # The auth API: an access token lives exactly its lifetime; a loser of a refresh race
    # within 5 s revokes nothing.
    assert (settings.access_token_leeway_s, settings.refresh_reuse_grace_s) == (0.0, 5.0)
    custom = Settings.from_env({"ACCESS_TOKEN_LEEWAY_S": "2.5", "REFRESH_REUSE_GRACE_S": "1"})
    assert (custom.access_token_leeway_s, custom.refresh_reuse_grace_s) == (2.5, 1.0)
    # The task API's images: at most 1,000 frames, a JPEG picture at most 100 scans.
    assert (settings.max_image_frames, settings.max_jpeg_scans) == (1000, 100)
    assert Settings.from_env({"MAX_JPEG_SCANS": "20"}).max_jpeg_scans == 20


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


@pytest.mark.parametrize(
    "variable",
    [
        "DATABASE_URL",
        "DATA_1_URL",
        "DATA_3_URL",
        "SOURCES_FILE",
        "EMBEDDED_PG_DIR",
        "LOG_LEVEL",
        "SOURCE_TIMEOUT_S",
        "POOL_MAX_SIZE",
        "SHUTDOWN_GRACE_S",
        "COALESCE_REQUESTS",
    ],
)
@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00", "\x7f"])
def test_a_control_character_in_an_environment_value_is_rejected_naming_the_variable(
    variable: str, char: str
) -> None:
    valid = {
        "DATABASE_URL": "postgresql://h/db",
        "DATA_1_URL": "postgresql://h/db",
        "DATA_3_URL": "postgresql://h/db",
        "SOURCES_FILE": "sources.toml",
        "EMBEDDED_PG_DIR": ".pgdata",
        "LOG_LEVEL": "info",
        "SOURCE_TIMEOUT_S": "1",
        "POOL_MAX_SIZE": "3",
        "SHUTDOWN_GRACE_S": "1",
        "COALESCE_REQUESTS": "1",
    }[variable]
    with pytest.raises(SettingsError, match=f"^{variable}.* must not contain control characters"):
        Settings.from_env({variable: valid + char})


@pytest.mark.parametrize("variable", ["DATABASE_URL", "DATA_2_URL"])
@pytest.mark.parametrize("dsn", ["postgresql+asyncpg://u:pw@h/db", "postgresql+psycopg2://h/db"])
def test_a_database_url_with_a_driver_suffix_is_rejected(variable: str, dsn: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{variable}: .*no \+driver"):
        Settings.from_env({variable: dsn})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SOURCE_TIMEOUT_S": "1e306"}, "SOURCE_TIMEOUT_S must be a finite number > 0 and <="),
        ({"SOURCE_TIMEOUT_S": "2147483"}, "SOURCE_TIMEOUT_S must be a finite number > 0 and <="),
        ({"SOURCE_TIMEOUT_S": "nan"}, "SOURCE_TIMEOUT_S must be a finite number"),
        ({"SOURCE_TIMEOUT_S": "inf"}, "SOURCE_TIMEOUT_S must be a finite number"),
        ({"STATEMENT_TIMEOUT_MS": "2147483648"}, "STATEMENT_TIMEOUT_MS must be >= 1 and <="),
        ({"STATEMENT_TIMEOUT_MS": "0"}, "STATEMENT_TIMEOUT_MS must be >= 1"),
        ({"CONNECTION_CHECK_INTERVAL_MS": "2147483648"}, "CONNECTION_CHECK_INTERVAL_MS must be"),
        ({"CONNECTION_CHECK_INTERVAL_MS": "-1"}, "CONNECTION_CHECK_INTERVAL_MS must be >= 0"),
        ({"SHUTDOWN_GRACE_S": "inf"}, "SHUTDOWN_GRACE_S must be a finite number >= 0"),
        ({"SHUTDOWN_GRACE_S": "nan"}, "SHUTDOWN_GRACE_S must be a finite number >= 0"),
        ({"SHUTDOWN_GRACE_S": "-1"}, "SHUTDOWN_GRACE_S must be a finite number >= 0"),
        ({"POOL_MAX_SIZE": "100000"}, "POOL_MAX_SIZE must be >= 1 and <="),
        ({"HTTP_MAX_CONNECTIONS": "1000000"}, "HTTP_MAX_CONNECTIONS must be >= 1 and <="),
        ({"HTTP_MAX_BODY_BYTES": str(2**40)}, "HTTP_MAX_BODY_BYTES must be >= 1 and <="),
        ({"ACCESS_TOKEN_LEEWAY_S": "-1"}, "ACCESS_TOKEN_LEEWAY_S must be a number from 0 to 300"),
        ({"ACCESS_TOKEN_LEEWAY_S": "nan"}, "ACCESS_TOKEN_LEEWAY_S must be a number from 0"),
        ({"REFRESH_REUSE_GRACE_S": "61"}, "REFRESH_REUSE_GRACE_S must be a number from 0 to 60"),
        ({"REFRESH_REUSE_GRACE_S": "inf"}, "REFRESH_REUSE_GRACE_S must be a number from 0"),
        ({"MAX_JPEG_SCANS": "0"}, "MAX_JPEG_SCANS must be >= 1 and <= 10000"),
        ({"MAX_JPEG_SCANS": "10001"}, "MAX_JPEG_SCANS must be >= 1 and <= 10000"),
    ],
)
def test_values_out_of_range_are_rejected_with_the_variable_named(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=f"^{message}"):
        Settings.from_env(env)


def test_the_largest_timeouts_fit_postgresqls_int32_milliseconds() -> None:
    pg_max_ms = 2**31 - 1
    settings = Settings.from_env(
        {
            "SOURCE_TIMEOUT_S": "2147482",
            "CONNECTION_CHECK_INTERVAL_MS": str(pg_max_ms),
            "SHUTDOWN_GRACE_S": "0",
        }
    )
    assert settings.statement_timeout_ms_for(settings.sources[0]) <= pg_max_ms
    assert settings.connection_check_interval_ms == pg_max_ms
    assert settings.shutdown_grace_s == 0.0
    explicit = Settings.from_env({"STATEMENT_TIMEOUT_MS": str(pg_max_ms)})
    assert explicit.statement_timeout_ms_for(explicit.sources[0]) == pg_max_ms


def test_the_message_about_a_huge_bad_number_is_bounded() -> None:
    with pytest.raises(SettingsError, match=r"^SOURCE_TIMEOUT_S must be a number") as error:
        Settings.from_env({"SOURCE_TIMEOUT_S": "x" * 200_000})
    assert len(str(error.value)) < 200
    with pytest.raises(SettingsError, match=r"^POOL_MAX_SIZE must be an integer") as error:
        Settings.from_env({"POOL_MAX_SIZE": "9" * 200_000})  # too many digits for int()
    assert len(str(error.value)) < 200


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "postgresql+asyncpg://u:pw@h/db"),
        ("SHUTDOWN_GRACE_S", "nan"),
        ("SOURCE_TIMEOUT_S", "1e306"),
        ("LOG_LEVEL", "info\nINJECTED"),
        ("EMBEDDED_PG_DIR", "dir\nINJECTED"),
    ],
)
def test_serve_exits_2_with_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    import service.platform.server
    from service.__main__ import main

    def must_not_start(*args: object, **kwargs: object) -> int:
        raise AssertionError("the server started with a broken configuration")

    # A database URL for every source, so that an accepted configuration would reach run().
    monkeypatch.setattr(service.platform.server, "run", must_not_start)
    for name in ("SOURCES_FILE", "DATA_1_URL", "DATA_2_URL", "DATA_3_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/db")
    monkeypatch.setenv(variable, value)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"configuration error: {variable}")
    assert err.count("\n") == 1
    assert err.endswith("\n")
