"""What the server runs for the service: pg_stat_activity checks shared by the fault tests."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from service.platform.pg_settings import APPLICATION_NAME


def query_gone_bounds(timeout_s: float) -> tuple[float, float]:
    """How soon after its request began a query the service gave up on is gone from the
    server: when the cancel reaches it (well before statement_timeout, timeout + 1 s, would
    end it), and when no cancel reaches it (statement_timeout, plus some slack)."""
    return timeout_s + 0.7, timeout_s + 1.0 + 0.3


async def service_queries_on(conn: Any, table: str) -> list[Any]:
    """The service's queries on ``table`` that the server is running now."""
    # Within a transaction, pg_stat_activity is a snapshot taken once: clear it to see now.
    # A backend waiting in ClientRead runs nothing: its query has ended (after an error in
    # the middle of the extended protocol it stays "active" until the client's Sync).
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    rows: list[Any] = await conn.fetch(
        "SELECT pid, state, wait_event, query FROM pg_stat_activity"
        " WHERE application_name = $1 AND state <> 'idle' AND strpos(query, $2) > 0"
        " AND wait_event IS DISTINCT FROM 'ClientRead'",
        APPLICATION_NAME,
        table,
    )
    return rows


async def assert_query_gone(conn: Any, table: str, *, started: float, within_s: float) -> None:
    """Poll pg_stat_activity until the service's query on ``table`` is gone; fail ``within_s``
    after ``started``.

    Called while the query cannot end by itself (its lock still held, its sleep still
    running), so only the service's cancel or the server's own limits can end it.
    """
    while True:
        polled_at = trio.current_time()
        running = await service_queries_on(conn, table)
        if not running:
            return
        if polled_at - started >= within_s:
            pytest.fail(
                f"{polled_at - started:.2f} s after the request, the server still runs the"
                f" service's query on {table}: {[dict(r) for r in running]}"
            )
        await trio.sleep(0.05)
