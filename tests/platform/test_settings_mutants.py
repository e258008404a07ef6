"""Settings rules that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.platform.settings import Settings, SettingsError


def test_every_default_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.connection_check_interval_ms == 250
    assert settings.http_max_body_bytes == 1024 * 1024
    assert settings.http_max_connections == 100
    assert settings.shutdown_grace_s == 5.0
    assert settings.log_level == "INFO"
    assert settings.coalesce_requests is False
    assert settings.admission_limit == 32
    assert settings.admission_queue == 32
    assert settings.admission_max_wait_s == 0.03
    assert settings.serve_demo_files is False


def test_every_variable_is_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "STATEMENT_TIMEOUT_MS": "700",
            "CONNECTION_CHECK_INTERVAL_MS": "40",
            "HTTP_MAX_BODY_BYTES": "2048",
            "HTTP_MAX_CONNECTIONS": "7",
            "EMBEDDED_PG_DIR": "/srv/pg",
            "SHUTDOWN_GRACE_S": "1.5",
            "ADMISSION_LIMIT": "3",
            "ADMISSION_QUEUE": "4",
            "ADMISSION_MAX_WAIT_S": "0.25",
        }
    )
    assert settings.statement_timeout_ms == 700
    assert settings.connection_check_interval_ms == 40
    assert settings.http_max_body_bytes == 2048
    assert settings.http_max_connections == 7
    assert settings.embedded_pg_dir == Path("/srv/pg")
    assert settings.shutdown_grace_s == 1.5
    assert (settings.admission_limit, settings.admission_queue) == (3, 4)
    assert settings.admission_max_wait_s == 0.25


@pytest.mark.parametrize(
    "variable",
    [
        "STATEMENT_TIMEOUT_MS",
        "CONNECTION_CHECK_INTERVAL_MS",
        "HTTP_MAX_BODY_BYTES",
        "HTTP_MAX_CONNECTIONS",
        "ADMISSION_LIMIT",
        "ADMISSION_QUEUE",
    ],
)
def test_integer_variables_refuse_a_fraction(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable} must be an integer, got '2.5'$"):
        Settings.from_env({variable: "2.5"})


def test_a_blank_number_means_the_default() -> None:
    assert Settings.from_env({"POOL_MAX_SIZE": "  "}).pool_max_size == 10


def test_a_bad_flag_is_named_with_its_value() -> None:
    with pytest.raises(SettingsError, match=r"; got 'maybe'$"):
        Settings.from_env({"COALESCE_REQUESTS": "maybe"})


def test_range_bounds_are_inclusive() -> None:
    settings = Settings.from_env(
        {
            "POOL_MAX_SIZE": "1",
            "ADMISSION_LIMIT": "0",
            "ADMISSION_QUEUE": "0",
            "ADMISSION_MAX_WAIT_S": "0",
        }
    )
    assert (settings.pool_max_size, settings.admission_limit, settings.admission_queue) == (1, 0, 0)
    assert settings.admission_max_wait_s == 0
    assert Settings.from_env({"ADMISSION_MAX_WAIT_S": "60"}).admission_max_wait_s == 60


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADMISSION_LIMIT": "-1"}, "ADMISSION_LIMIT must be >= 0 and <= 100000, got -1"),
        ({"ADMISSION_QUEUE": "-1"}, "ADMISSION_QUEUE must be >= 0 and <= 100000, got -1"),
        ({"ADMISSION_MAX_WAIT_S": "60.5"}, "ADMISSION_MAX_WAIT_S must be a number from 0 to 60"),
        ({"ADMISSION_MAX_WAIT_S": "-0.1"}, "ADMISSION_MAX_WAIT_S must be a number from 0 to 60"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (
            {"SOURCE_TIMEOUT_S": "0"},
            "SOURCE_TIMEOUT_S must be a finite number > 0 and <= 2147482"
            " (PostgreSQL's timeouts are int32 milliseconds)",
        ),
    ],
)
def test_out_of_range_messages_are_exact(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message


def test_serve_demo_files_comes_from_the_sources_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        'serve_demo_files = true\n[[source]]\nname = "a"\nkind = "http"\nurl = "http://h/a"\n'
    )
    assert Settings.from_env({"SOURCES_FILE": str(path)}).serve_demo_files is True


@pytest.mark.parametrize("blank", ["", " ", "\u00a0"])
def test_a_blank_statement_timeout_means_the_default_like_every_other_number(blank: str) -> None:
    settings = Settings.from_env({"STATEMENT_TIMEOUT_MS": blank, "SOURCE_TIMEOUT_S": " "})
    assert settings.statement_timeout_ms is None
    assert settings.statement_timeout_ms_for(settings.sources[0]) == 3000
