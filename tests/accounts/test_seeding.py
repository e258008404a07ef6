"""The first start's users: an admin and fake users, once, only on an empty users table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from service.__main__ import main
from service.accounts.passwords import Passwords
from service.accounts.seeding import SeedingError, SeedPlan, seed_accounts
from service.accounts.store import count_users

pytestmark = pytest.mark.integration


async def test_an_empty_table_gets_the_admin_and_the_fake_users_once(empty_db: str) -> None:
    plan = SeedPlan("boss@example.com", None, seed_users=4)
    first = await seed_accounts(empty_db, plan, Passwords.cheap())
    assert first.seeded
    assert first.users_created == 5
    assert first.generated_admin_password is not None
    assert len(first.generated_admin_password) >= 12
    again = await seed_accounts(empty_db, plan, Passwords.cheap())
    assert not again.seeded  # a restart seeds nothing
    assert await count_users(empty_db) == 5


async def test_a_configured_admin_password_is_used_and_not_shown(empty_db: str) -> None:
    plan = SeedPlan("boss@example.com", "s3cret-enough", seed_users=0)
    result = await seed_accounts(empty_db, plan, Passwords.cheap())
    assert (result.seeded, result.users_created) == (True, 1)
    assert result.generated_admin_password is None


async def test_two_starts_at_once_seed_only_once(empty_db: str) -> None:
    plan = SeedPlan("boss@example.com", "s3cret-enough", seed_users=3)
    results = []

    async def start() -> None:
        results.append(await seed_accounts(empty_db, plan, Passwords.cheap()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start)
        nursery.start_soon(start)
    assert sorted(result.seeded for result in results) == [False, True]
    assert await count_users(empty_db) == 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADMIN_EMAIL": "nope"}, "ADMIN_EMAIL is not an email address"),
        ({"ADMIN_PASSWORD": "short"}, "ADMIN_PASSWORD must have 8 to 1,024 characters"),
        ({"SEED_USERS": "many"}, "SEED_USERS must be an integer"),
        ({"SEED_USERS": "-1"}, "SEED_USERS must be from 0"),
    ],
)
def test_a_bad_seeding_variable_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SeedingError, match=message):
        SeedPlan.from_env(env)


def test_serve_refuses_a_bad_seeding_variable_before_starting_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEED_USERS", "lots")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.strip() == (
        "configuration error: SEED_USERS must be an integer, got 'lots'"
    )


def test_defaults() -> None:
    assert SeedPlan.from_env({}) == SeedPlan("admin@example.com", None, 25)


def test_a_dot_env_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.__main__ import load_env_file

    directory = tmp_path
    (directory / ".env").write_text("DOTENV_ONLY=from-file\nDOTENV_BOTH=from-file\n")
    monkeypatch.setenv("DOTENV_BOTH", "from-environment")
    monkeypatch.delenv("DOTENV_ONLY", raising=False)
    monkeypatch.chdir(directory)
    try:
        assert load_env_file()
        assert os.environ["DOTENV_ONLY"] == "from-file"
        assert os.environ["DOTENV_BOTH"] == "from-environment"
    finally:
        os.environ.pop("DOTENV_ONLY", None)
    assert not load_env_file(directory / "missing.env")


def test_serve_reads_its_configuration_from_dot_env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path
    (directory / ".env").write_text("SEED_USERS=from-dot-env\n")
    monkeypatch.delenv("SEED_USERS", raising=False)
    monkeypatch.chdir(directory)
    try:
        assert main(["serve"]) == 2
    finally:
        os.environ.pop("SEED_USERS", None)
    assert "SEED_USERS must be an integer, got 'from-dot-env'" in capsys.readouterr().err


async def test_a_newer_schema_adds_its_tables_to_an_existing_database_and_keeps_the_data(
    pg_dsn: str, tmp_path: Path
) -> None:
    """An existing database of the fan-out-only version, with data of its own, then
    today's schema.sql (as ``serve`` applies it): the accounts' table appears, nothing is
    lost, and applying it again changes nothing."""
    import secrets

    from sqlalchemy.engine import make_url

    from service.platform.dbinit import apply_sql_files, default_sql_files
    from tests.support.pg_admin import admin

    name = f"test_{secrets.token_hex(4)}"
    async with admin(pg_dsn) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_url(pg_dsn).set(database=name).render_as_string(hide_password=False)
    try:
        old = tmp_path / "old-schema.sql"
        old.write_text("CREATE TABLE data_1 (id INT PRIMARY KEY, name VARCHAR(255));\n")
        await apply_sql_files(dsn, [old])
        async with admin(dsn) as conn:
            await conn.execute("INSERT INTO data_1 VALUES (7, 'kept')")
        schema, _seed = default_sql_files()
        await apply_sql_files(dsn, [schema])
        await apply_sql_files(dsn, [schema])  # idempotent
        async with admin(dsn) as conn:
            assert await conn.fetchval("SELECT name FROM data_1 WHERE id = 7") == "kept"
            assert await conn.fetchval("SELECT count(*) FROM accounts_users") == 0
    finally:
        async with admin(pg_dsn) as conn:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
