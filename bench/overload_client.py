"""The overload benchmark's load client: every answer classified, ``Retry-After`` honoured.

``python -m bench.overload_client URL --clients 32 --duration 5 --rows 60 --timeout 0.25``
runs that many keep-alive clients (closed loop: each sends its next request when the
previous answer is read), and prints one JSON object: per status, counts and latencies;
how many ``200`` answers were complete (``--rows`` rows) and on time (within
``timeout + slack``); and goodput, the complete on-time answers per second.

A client that is shed (``503``) waits as long as ``Retry-After`` says before its next
request, as the contract asks, plus a random jitter of up to half of it (as well-behaved
clients do, so that clients shed together do not all come back in the same instant);
``--ignore-retry-after`` makes it retry at once.
Runs on asyncio (uvloop if installed) in its own process, so the measuring client
does not share the service's event loop or GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from urllib.parse import urlsplit

import orjson


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class Tally:
    def __init__(self) -> None:
        self.ok: list[float] = []  # latency of every 200
        self.complete_on_time = 0
        self.incomplete = 0
        self.shed: list[float] = []  # latency of every 503
        self.other: dict[int, int] = {}
        self.errors = 0
        self.reconnects = 0


async def _client(
    host: str,
    port: int,
    path: str,
    until: float,
    tally: Tally,
    *,
    rows: int,
    on_time_s: float,
    honour_retry_after: bool,
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    while time.perf_counter() < until:
        # A keep-alive connection the server closes between answers (hypercorn does after
        # 1,000 requests) is reopened, as an HTTP client would; anything else is an error.
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await _exchange(
                reader,
                writer,
                request,
                until,
                tally,
                rows=rows,
                on_time_s=on_time_s,
                honour_retry_after=honour_retry_after,
            )
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                tally.errors += 1
                return
            tally.reconnects += 1
        except OSError:
            tally.errors += 1
            return
        finally:
            writer.close()


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: bytes,
    until: float,
    tally: Tally,
    *,
    rows: int,
    on_time_s: float,
    honour_retry_after: bool,
) -> None:
    while time.perf_counter() < until:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, retry_after = 0, 0.0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"retry-after":
                retry_after = float(value)
        body = await reader.readexactly(length)
        elapsed = time.perf_counter() - started
        if status == 200:
            tally.ok.append(elapsed)
            if len(orjson.loads(body)) != rows:
                tally.incomplete += 1
            elif elapsed <= on_time_s:
                tally.complete_on_time += 1
        elif status == 503:
            tally.shed.append(elapsed)
            if honour_retry_after:
                pause = retry_after * (1 + random.random() / 2)
                await asyncio.sleep(min(pause, max(0.0, until - time.perf_counter())))
        else:
            tally.other[status] = tally.other.get(status, 0) + 1


async def run(
    url: str,
    clients: int,
    duration_s: float,
    *,
    rows: int,
    timeout_s: float,
    slack_s: float,
    honour_retry_after: bool,
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    tally = Tally()
    on_time_s = timeout_s + slack_s
    started = time.perf_counter()
    until = started + duration_s
    await asyncio.gather(
        *(
            _client(
                host,
                port,
                path,
                until,
                tally,
                rows=rows,
                on_time_s=on_time_s,
                honour_retry_after=honour_retry_after,
            )
            for _ in range(clients)
        )
    )
    elapsed = time.perf_counter() - started
    ok, shed = sorted(tally.ok), sorted(tally.shed)
    on_time = sum(latency <= on_time_s for latency in ok)
    return {
        "clients": clients,
        "elapsed_s": elapsed,
        "answers_200": len(ok),
        "answers_503": len(shed),
        "other_statuses": sum(tally.other.values()),
        "errors": tally.errors,
        "reconnects": tally.reconnects,
        "rps_200": len(ok) / elapsed,
        "goodput": tally.complete_on_time / elapsed,
        "complete_on_time": tally.complete_on_time,
        "incomplete_200": tally.incomplete,
        "on_time_fraction_200": on_time / len(ok) if ok else float("nan"),
        "p50_ms": _percentile(ok, 0.50) * 1000,
        "p99_ms": _percentile(ok, 0.99) * 1000,
        "max_ms": (ok[-1] if ok else float("nan")) * 1000,
        "shed_p99_ms": _percentile(shed, 0.99) * 1000,
        "shed_max_ms": (shed[-1] if shed else float("nan")) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rows", type=int, default=60, help="rows of a complete answer")
    parser.add_argument("--timeout", type=float, default=0.25, help="the source timeout, s")
    parser.add_argument("--slack", type=float, default=0.05, help="on time: timeout + slack")
    parser.add_argument("--ignore-retry-after", action="store_true")
    args = parser.parse_args()
    gc.disable()  # the measuring instrument must not pause itself mid-measurement
    runner = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    result = runner(
        run(
            args.url,
            args.clients,
            args.duration,
            rows=args.rows,
            timeout_s=args.timeout,
            slack_s=args.slack,
            honour_retry_after=not args.ignore_retry_after,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
