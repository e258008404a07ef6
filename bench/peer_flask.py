"""Baseline (b): Flask + a thread pool + psycopg (a psycopg_pool connection pool), served by
gunicorn's threaded worker. Run: ``gunicorn -k gthread --threads 32 bench.peer_flask:app``.

Reads DATABASE_URL and the tables from BENCH_TABLES (comma separated, default the three).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import orjson
from flask import Flask, Response
from psycopg_pool import ConnectionPool

TIMEOUT_S = float(os.environ.get("SOURCE_TIMEOUT_S", "2.0"))
TABLES = os.environ.get("BENCH_TABLES", "data_1,data_2,data_3").split(",")
POOL_SIZE = int(os.environ.get("POOL_MAX_SIZE", "10"))

app = Flask(__name__)
pool = ConnectionPool(os.environ["DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE, open=True)
executor = ThreadPoolExecutor(max_workers=POOL_SIZE * len(TABLES))


def read(table: str) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = conn.execute(f'SELECT id, name FROM "{table}"').fetchall()
    return [{"id": row[0], "name": row[1]} for row in rows]


@app.get("/data")
def data() -> Response:
    futures = [executor.submit(read, table) for table in TABLES]
    done, _ = wait(futures, timeout=TIMEOUT_S)
    merged: list[dict[str, Any]] = []
    for future in futures:
        if future in done and future.exception() is None:
            merged.extend(future.result())
    merged.sort(key=lambda row: row["id"])
    return Response(orjson.dumps(merged), mimetype="application/json")


@app.get("/health")
def health() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
