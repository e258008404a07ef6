"""The benchmark: our service against peer stacks, on one embedded PostgreSQL, in one run.

``nox -s bench`` (or ``python -m bench.run``) starts an embedded PostgreSQL with the demo's
60 rows (plus the tables of the scale runs), then, with 1 and then 2 worker processes each,
our service (``/data``, ``/data`` with request coalescing, and the empty ``/health`` as the
server's ceiling), FastAPI + asyncpg on uvicorn (as ``fastapi[standard]`` installs it, and
with the pure-asyncio loop and h11 parser), and Flask + a thread pool + psycopg on gunicorn.
Load comes from wrk when it is installed, else from ``bench.loadgen``, in its own process,
at 1, 8, 32 and 128 concurrent connections. Then the scale runs (3, 10, 30 sources; 20, 10k,
100k rows per source) and the deadline precision run (one source hung, 32 clients).
Writes ``bench/results/latest.json`` and ``latest.png`` and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LEVELS = (1, 8, 32, 128)


@dataclass(frozen=True)
class Stack:
    name: str
    path: str
    command: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)


def stacks(workers: int) -> list[Stack]:
    py = sys.executable
    ours = [py, "-m", "service", "serve", "--port", "{port}", "--workers", str(workers)]
    uvicorn = [py, "-m", "uvicorn", "bench.peer_fastapi:app", "--port", "{port}"]
    uvicorn += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    gunicorn = [py, "-m", "gunicorn", "-k", "gthread", "--threads", "32", "-w", str(workers)]
    gunicorn += ["-b", "127.0.0.1:{port}", "--log-level", "warning", "bench.peer_flask:app"]
    return [
        Stack("ours", "/data", ours),
        Stack("ours_coalesced", "/data", ours, {"COALESCE_REQUESTS": "1"}),
        Stack("ours_empty", "/health", ours),
        Stack("fastapi", "/data", uvicorn),
        Stack("fastapi_h11", "/data", [*uvicorn, "--loop", "asyncio", "--http", "h11"]),
        Stack("flask", "/data", gunicorn),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def started(stack: Stack, env: dict[str, str]) -> Iterator[str]:
    """Start ``stack`` on a free port; yield its base URL once /health answers."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in stack.command]
    full_env = os.environ | {"LOG_LEVEL": "WARNING"} | env | stack.env
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while not _answers(base + "/health"):
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{stack.name} exited:\n{log.read().decode()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{stack.name} did not start")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def load(url: str, connections: int, duration_s: float) -> dict[str, float]:
    """Drive ``url`` from another process; req/s and latency percentiles in ms."""
    wrk = shutil.which("wrk")
    if wrk is None:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                url,
                "--connections",
                str(connections),
                "--duration",
                str(duration_s),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return dict(json.loads(out)) | {"tool": "loadgen"}  # type: ignore[operator]
    threads = min(2, connections)
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "30s",
            "--latency",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = {"tool": "wrk"}
    for pct, key in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[key] = _ms(match.group(1)) if match else float("nan")
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    result["mean_ms"] = _ms(latency.group(1)) if latency else float("nan")
    result["max_ms"] = _ms(latency.group(3)) if latency else float("nan")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(rps.group(1)) if rps else 0.0
    total = re.search(r"(\d+) requests in", out)
    result["requests"] = int(total.group(1)) if total else 0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    result["errors"] = (int(errors.group(1)) if errors else 0) + (
        sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    )
    return result


def sql_for_scale_tables() -> str:
    """Tables for the scale runs: 30 small sources, and 3 sources of 10k and of 100k rows."""
    statements = []
    for i in range(1, 31):
        statements.append(
            f"CREATE TABLE IF NOT EXISTS scale_src_{i} (id INT PRIMARY KEY, name VARCHAR(255));"
            f"INSERT INTO scale_src_{i} SELECT g, 'Test ' || g FROM generate_series("
            f"{(i - 1) * 20 + 1}, {i * 20}) g ON CONFLICT DO NOTHING;"
        )
    for rows in (10_000, 100_000):
        for i in range(1, 4):
            table = f"rows_{rows}_{i}"
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY, name VARCHAR(255));"
                f"INSERT INTO {table} SELECT g, 'Test ' || g FROM generate_series("
                f"{(i - 1) * rows + 1}, {i * rows}) g ON CONFLICT DO NOTHING;"
            )
    return "\n".join(statements)


def sources_file(directory: Path, name: str, tables: Sequence[str]) -> Path:
    """A sources file: the first table through the ORM, the others with raw SQL."""
    path = directory / f"{name}.toml"
    entries = [
        f'[[source]]\nname = "{table}"\nkind = "{"orm" if i == 0 else "sql"}"\ntable = "{table}"\n'
        for i, table in enumerate(tables)
    ]
    path.write_text("\n".join(entries))
    return path


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per load level")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import trio

    from service.platform.dbinit import apply_sql_files, default_sql_files
    from service.platform.embedded_pg import embedded_postgres

    began = time.monotonic()
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_tool": "wrk" if shutil.which("wrk") else "bench.loadgen",
        },
        "duration_s": args.duration,
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp) / "pg") as dsn:
        scale_sql = Path(tmp) / "scale.sql"
        scale_sql.write_text(sql_for_scale_tables())
        trio.run(apply_sql_files, dsn, [*default_sql_files(), scale_sql])
        env = {"DATABASE_URL": dsn}

        for workers in args.workers:
            for stack in stacks(workers):
                with started(stack, env) as base:
                    load(base + stack.path, 8, 1.0)  # warm-up: pools, caches
                    for connections in LEVELS:
                        result = load(base + stack.path, connections, args.duration)
                        result |= {"stack": stack.name, "workers": workers, "clients": connections}
                        report["runs"].append(result)
                        print(
                            f"{stack.name:15} w={workers} c={connections:3}  "
                            f"{result['rps']:8.0f} req/s  p50 {result['p50_ms']:7.1f} ms  "
                            f"p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}",
                            flush=True,
                        )

        report["ratios"] = ratios(report["runs"])
        report["scale"] = scale_runs(Path(tmp), env, args.duration)
        report["deadline"] = deadline_run(env, dsn, max(args.duration * 3, 12.0))
    report["elapsed_s"] = round(time.monotonic() - began, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.out / "latest.png")
    print_summary(report)
    return 0


def ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """ours / peer, per workers and clients, for req/s and p99."""
    by = {(r["stack"], r["workers"], r["clients"]): r for r in runs}
    out: dict[str, Any] = {}
    for (stack, workers, clients), run in by.items():
        if stack not in ("ours", "ours_coalesced"):
            continue
        for peer in ("fastapi", "fastapi_h11", "flask", "ours_empty"):
            other = by.get((peer, workers, clients))
            if other is None or peer == stack:
                continue
            key = f"{stack}/{peer} w={workers} c={clients}"
            out[key] = {
                "rps": ratio(run["rps"], other["rps"]),
                "p99": ratio(run["p99_ms"], other["p99_ms"]),
            }
    return out


def scale_runs(tmp: Path, env: dict[str, str], duration_s: float) -> list[dict[str, Any]]:
    """Latency of our service and of the FastAPI peer as sources and rows grow."""
    py = sys.executable
    configs = [
        ("sources", 3, [f"scale_src_{i}" for i in range(1, 4)]),
        ("sources", 10, [f"scale_src_{i}" for i in range(1, 11)]),
        ("sources", 30, [f"scale_src_{i}" for i in range(1, 31)]),
        ("rows", 20, ["data_1", "data_2", "data_3"]),
        ("rows", 10_000, [f"rows_10000_{i}" for i in range(1, 4)]),
        ("rows", 100_000, [f"rows_100000_{i}" for i in range(1, 4)]),
    ]
    results = []
    for axis, value, tables in configs:
        # A generous deadline: the question is how long the read takes, not whether it fits 2 s.
        common = env | {"SOURCE_TIMEOUT_S": "30", "BENCH_TABLES": ",".join(tables)}
        ours_env = common | {"SOURCES_FILE": str(sources_file(tmp, f"{axis}_{value}", tables))}
        for name, command, stack_env in (
            ("ours", [py, "-m", "service", "serve", "--port", "{port}"], ours_env),
            (
                "fastapi",
                [
                    py,
                    "-m",
                    "uvicorn",
                    "bench.peer_fastapi:app",
                    "--port",
                    "{port}",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                common,
            ),
        ):
            with started(Stack(name, "/data", command), stack_env) as base:
                load(base + "/data", 1, 1.0)
                for clients in (1, 8):
                    result = load(base + "/data", clients, duration_s)
                    result |= {"stack": name, "axis": axis, "value": value, "clients": clients}
                    results.append(result)
                    print(
                        f"scale {axis}={value:<6} {name:8} c={clients}  "
                        f"p50 {result['p50_ms']:8.1f} ms  p99 {result['p99_ms']:8.1f} ms  "
                        f"{result['rps']:7.1f} req/s",
                        flush=True,
                    )
    return results


def deadline_run(env: dict[str, str], dsn: str, duration_s: float) -> dict[str, Any]:
    """One source hung (its table locked by another session), 32 clients: response times."""
    import psycopg

    py = sys.executable
    stack = Stack("ours", "/data", [py, "-m", "service", "serve", "--port", "{port}"])
    with started(stack, env) as base, psycopg.connect(dsn, autocommit=False) as locker:
        locker.execute("LOCK TABLE data_2 IN ACCESS EXCLUSIVE MODE")
        result = load(base + "/data", 32, duration_s)
        locker.rollback()
    result |= {
        "clients": 32,
        "timeout_s": 2.0,
        "target_p99_ms": 2050.0,
        "target_max_ms": 2100.0,
    }
    print(
        f"deadline: one source hung, 32 clients: p50 {result['p50_ms']:.1f} ms, p99 "
        f"{result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms ({result['requests']} requests)",
        flush=True,
    )
    return result


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = sorted({r["workers"] for r in report["runs"]})
    fig, axes = plt.subplots(len(workers), 2, figsize=(12, 4.5 * len(workers)), squeeze=False)
    names = sorted({r["stack"] for r in report["runs"]})
    for row, w in enumerate(workers):
        for name in names:
            runs = sorted(
                (r for r in report["runs"] if r["stack"] == name and r["workers"] == w),
                key=lambda r: r["clients"],
            )
            clients = [r["clients"] for r in runs]
            style = "--" if name == "ours_empty" else "-"
            axes[row][0].plot(clients, [r["rps"] for r in runs], style, marker="o", label=name)
            axes[row][1].plot(clients, [r["p99_ms"] for r in runs], style, marker="o", label=name)
        for col, label in ((0, "requests/s"), (1, "p99 latency (ms)")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(LEVELS), [str(level) for level in LEVELS])
            ax.set_xlabel("concurrent clients")
            ax.set_ylabel(label)
            ax.set_title(f"GET /data, {w} worker{'s' if w > 1 else ''} each: {label}")
            ax.grid(True, alpha=0.3)
        axes[row][1].set_yscale("log")
        axes[row][0].legend(fontsize=8)
    machine = report["machine"]
    fig.suptitle(
        f"fan-out benchmark — {machine['cpus']} CPUs, Python {machine['python']}, "
        f"load: {machine['load_tool']}",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def print_summary(report: dict[str, Any]) -> None:
    print("\nratios (ours / peer): req/s and p99")
    for key, value in report["ratios"].items():
        if "c=32" in key:
            print(f"  {key:40} req/s {value['rps']:.2f}x   p99 {value['p99']:.2f}x")
    deadline = report["deadline"]
    print(
        f"deadline precision: p99 {deadline['p99_ms']:.1f} ms (target 2050), "
        f"max {deadline['max_ms']:.1f} ms (target 2100)"
    )
    print(f"written: {RESULTS / 'latest.json'} and latest.png ({report['elapsed_s']} s)")


if __name__ == "__main__":
    sys.exit(main())
