"""``python -m service users fake|load`` against a real PostgreSQL: all of a file, or none."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from service.__main__ import main
from service.accounts.store import count_users

pytestmark = pytest.mark.integration


async def registered(dsn: str) -> int:
    return await count_users(dsn)


def run_cli(*argv: str) -> int:
    return main(list(argv))


async def test_fake_then_load_registers_every_user_once(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users_file = tmp_path / "users.json"
    assert (
        await trio.to_thread.run_sync(
            run_cli, "users", "fake", "--count", "5", "--seed", "41", "--out", str(users_file)
        )
        == 0
    )
    before = await registered(pg_dsn)
    assert (
        await trio.to_thread.run_sync(run_cli, "users", "load", str(users_file), "--dsn", pg_dsn)
        == 0
    )
    assert await registered(pg_dsn) == before + 5
    assert "loaded 5 users" in capsys.readouterr().out
    # The same file again: every email is taken, so nothing at all is loaded.
    assert (
        await trio.to_thread.run_sync(run_cli, "users", "load", str(users_file), "--dsn", pg_dsn)
        == 2
    )
    assert await registered(pg_dsn) == before + 5
    assert "already registered" in capsys.readouterr().err


async def test_a_file_with_one_bad_user_loads_nothing(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users_file = tmp_path / "bad.json"
    users_file.write_text(
        '[{"email": "ok-1@example.com", "password": "12345678"},'
        ' {"email": "not-an-email", "password": "12345678"}]'
    )
    before = await registered(pg_dsn)
    assert (
        await trio.to_thread.run_sync(run_cli, "users", "load", str(users_file), "--dsn", pg_dsn)
        == 2
    )
    assert await registered(pg_dsn) == before
    assert "user #2: 'not-an-email' is not an email address" in capsys.readouterr().err


async def test_an_email_taken_in_another_case_loads_nothing(pg_dsn: str, tmp_path: Path) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text('[{"email": "Case@Example.com", "password": "12345678"}]')
    second.write_text(
        '[{"email": "fresh@example.com", "password": "12345678"},'
        ' {"email": "case@example.COM", "password": "12345678"}]'
    )
    assert await trio.to_thread.run_sync(run_cli, "users", "load", str(first), "--dsn", pg_dsn) == 0
    before = await registered(pg_dsn)
    assert (
        await trio.to_thread.run_sync(run_cli, "users", "load", str(second), "--dsn", pg_dsn) == 2
    )
    assert await registered(pg_dsn) == before


def test_load_without_a_database_or_a_readable_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert run_cli("users", "load", str(tmp_path / "missing.json")) == 2
    assert "give --dsn or set DATABASE_URL" in capsys.readouterr().err
    assert (
        run_cli("users", "load", str(tmp_path / "missing.json"), "--dsn", "postgresql://x/y") == 2
    )
    assert "cannot read" in capsys.readouterr().err
