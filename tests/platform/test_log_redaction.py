"""Secrets kept out of log lines: the log format's redaction, and database errors that never
quote a statement's values (a failed INSERT of a user holds its password hash)."""

from __future__ import annotations

import logging
import sys
import traceback

import pytest
from sqlalchemy.exc import DBAPIError

from service.accounts.store import UserStore, engine_for
from service.fanout.orm_source import create_orm_engine
from service.platform.aio import run_isolated
from service.platform.database import open_database
from service.platform.fast_aio_loop import open_loop
from service.platform.log_redaction import LOG_FORMAT, RedactingFormatter
from service.platform.redact import redact_log_text

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$Zm9yZ2VkaGFzaGZvcmdlZGhhc2g"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"[parameters: ('a@example.com', '', '{HASH}', False, 0)]", "$argon2"),
        ("bcrypt $2b$12$abcdefghijklmnopqrstuv", "$2b$12$abc"),
        (
            "DataError: invalid input for query argument $3: 'hunter2hunter2'"
            " (invalid literal for int() with base 10: 'hunter2hunter2')",
            "hunter2",
        ),
        ("GET http://svc:pw-1@host/x?api_key=key-1 failed", "pw-1"),
        ("GET http://svc:pw-1@host/x?api_key=key-1 failed", "key-1"),
    ],
)
def test_log_text_loses_hashes_quoted_arguments_and_url_secrets(text: str, secret: str) -> None:
    redacted = redact_log_text(text)
    assert secret not in redacted
    assert redacted.split()[0] == text.split()[0]  # the rest of the line stays


def test_plain_lines_and_the_servers_address_are_kept() -> None:
    for line in ("Running on http://127.0.0.1:8000 (CTRL + C to quit)", "costs $2 or $3"):
        assert redact_log_text(line) == line


def test_the_formatter_redacts_message_arguments_and_traceback() -> None:
    try:
        raise ValueError(f"INSERT failed [parameters: ('{HASH}',)] on postgresql://u:dbpw@h/d")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: GET %s", ("http://h/x?key=k1",), exc_info
    )
    line = RedactingFormatter(LOG_FORMAT).format(record)
    assert "HTTP Request: GET http://h/x?key=***" in line
    assert "ValueError: INSERT failed" in line
    for secret in ("$argon2", "k1", "dbpw"):
        assert secret not in line


@pytest.mark.integration
async def test_a_failed_insert_of_a_user_does_not_quote_its_password_hash(empty_db: str) -> None:
    """NUL in a username reaches PostgreSQL here (the routes refuse it before): the INSERT
    fails, and neither its message nor its traceback holds the hash."""
    async with open_database(empty_db, user="tests") as database:
        with pytest.raises(DBAPIError) as caught:
            await UserStore(database).create("nul@example.com", "nul\x00", HASH)
    text = "".join(traceback.format_exception(caught.value))
    assert "INSERT INTO" in text
    assert "$argon2" not in text
    assert "parameters hidden" in text


@pytest.mark.integration
@pytest.mark.parametrize("which", ["cli", "fanout"])
async def test_every_engine_hides_statement_parameters(empty_db: str, which: str) -> None:
    async def failing_query() -> str:
        engine = (
            engine_for(empty_db)
            if which == "cli"
            else create_orm_engine(empty_db, max_size=1, connect_kwargs={})
        )
        try:
            from sqlalchemy import text

            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1 / (:secret = 'x')::int"), {"secret": HASH})
        except DBAPIError as exc:
            return str(exc)
        finally:
            await engine.dispose()
        return "no error"

    async with open_loop() as loop:
        message = await run_isolated(loop, failing_query())
    assert "division by zero" in message
    assert "$argon2" not in message
