"""Command line: ``python -m service serve`` and ``python -m service initdb``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .platform.settings import SettingsError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API with hypercorn (trio worker)")
    serve.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    # argparse runs string defaults through `type` too, so a bad $PORT is a clean usage error.
    serve.add_argument("--port", type=_port, default=os.environ.get("PORT") or "8000")
    serve.add_argument("--workers", type=_positive_int, default=1, help="worker processes")
    serve.add_argument(
        "--sources",
        type=Path,
        default=None,
        help="TOML file of sources (default: $SOURCES_FILE, else the three demo tables)",
    )

    init = commands.add_parser("initdb", help="apply schema.sql and seed.sql to a database")
    init.add_argument(
        "--dsn", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL"
    )
    init.add_argument(
        "files", nargs="*", type=Path, help="SQL files (default: schema.sql seed.sql)"
    )
    return parser


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port (or $PORT) must be a number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .platform.server import serve

            if args.sources is not None:
                # Workers are separate processes that read their settings from the environment.
                os.environ["SOURCES_FILE"] = str(args.sources.resolve())
            return serve(host=args.host, port=args.port, workers=args.workers)
        if args.command == "initdb":
            if not args.dsn:
                print("initdb: give --dsn or set DATABASE_URL", file=sys.stderr)
                return 2
            from .platform.dbinit import initdb

            initdb(args.dsn, args.files or None)
            print("schema and seed applied")
            return 0
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
