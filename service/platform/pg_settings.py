"""Connection parameters every PostgreSQL connection of the service is opened with."""

from __future__ import annotations

from typing import Any

__all__ = ["APPLICATION_NAME", "connect_kwargs"]

#: Shown in ``pg_stat_activity.application_name`` for every connection of the service.
APPLICATION_NAME = "switchyard"


def connect_kwargs(
    *,
    statement_timeout_ms: int,
    connection_check_interval_ms: int,
    application_name: str = APPLICATION_NAME,
) -> dict[str, Any]:
    """asyncpg ``connect`` keyword arguments shared by the ORM and raw-SQL sources.

    ``statement_timeout`` makes the server end a query the service has given up on,
    even when the cancel request never arrives. ``client_connection_check_interval``
    (PostgreSQL 14+) makes a backend notice a client that went away mid-query.
    No asyncpg ``command_timeout``: it would arm a timer per query, and the deadline
    is the trio cancel scope anyway (a cancelled connection is terminated, which
    also ends asyncpg's background cancel request).
    """
    server_settings = {
        "application_name": application_name,
        "statement_timeout": str(statement_timeout_ms),
    }
    if connection_check_interval_ms > 0:
        server_settings["client_connection_check_interval"] = str(connection_check_interval_ms)
    return {"server_settings": server_settings}
