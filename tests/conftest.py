"""Shared fixtures: a real PostgreSQL for the integration tests (embedded, or DATABASE_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.platform.dbinit import initdb
from service.platform.embedded_pg import embedded_postgres


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded PostgreSQL: ``DATABASE_URL`` when set, else an embedded server for the session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        initdb(url)
        yield url
        return
    data_dir: Path = tmp_path_factory.mktemp("pg") / "data"
    with embedded_postgres(data_dir) as dsn:
        initdb(dsn)
        yield dsn
