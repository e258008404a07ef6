"""Baseline (a): the usual answer to the task. FastAPI + an asyncpg pool + asyncio.gather,
``wait_for(2)`` per source, on uvicorn. Run: ``uvicorn bench.peer_fastapi:app``.

Reads DATABASE_URL and the tables from BENCH_TABLES (comma separated, default the three).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI
from fastapi.responses import Response

TIMEOUT_S = float(os.environ.get("SOURCE_TIMEOUT_S", "2.0"))
TABLES = os.environ.get("BENCH_TABLES", "data_1,data_2,data_3").split(",")
POOL_SIZE = int(os.environ.get("POOL_MAX_SIZE", "10"))
pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


async def read(table: str) -> list[dict[str, Any]]:
    assert pool is not None
    rows = await pool.fetch(f'SELECT id, name FROM "{table}"')
    return [{"id": row["id"], "name": row["name"]} for row in rows]


async def read_or_nothing(table: str) -> list[dict[str, Any]]:
    try:
        return await asyncio.wait_for(read(table), TIMEOUT_S)
    except Exception:
        return []


@app.get("/data")
async def data() -> Response:
    results = await asyncio.gather(*(read_or_nothing(table) for table in TABLES))
    merged = sorted((row for rows in results for row in rows), key=lambda row: row["id"])
    return Response(orjson.dumps(merged), media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
