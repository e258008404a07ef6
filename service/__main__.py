"""Command line: ``python -m service serve`` and ``initdb``, and the commands each installed
capability adds (``service.capabilities``: ``users``, ``images``, ``score``, ``search``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .capabilities import installed
from .platform.settings import SettingsError

__all__ = ["main"]

# A capability's commands: its ``CAPABILITY.commands`` names
# ``add_commands(commands: argparse._SubParsersAction) -> None``; each parser it adds sets
# ``run=<function(args) -> exit code>`` with ``set_defaults``.


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
    for capability in installed():
        if capability.commands is not None:
            capability.commands(commands)
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


def load_env_file(path: Path | None = None) -> bool:
    """Read ``.env`` of the working directory (or ``path``) into the environment, if there is
    one; a variable already set in the environment wins. Whether a file was read."""
    from dotenv import load_dotenv

    path = path or Path.cwd() / ".env"
    return path.is_file() and load_dotenv(path, override=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    load_env_file()  # before the parser: its defaults come from the environment
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .platform.server import serve

            if args.sources is not None:
                # Workers are separate processes that read their settings from the environment.
                os.environ["SOURCES_FILE"] = str(args.sources.resolve())
            # Checked before anything starts: a bad setting stops serve here.
            steps = [c.prepare(os.environ) for c in installed() if c.prepare is not None]
            return serve(
                app_path="service.app:create_app_from_env()",
                host=args.host,
                port=args.port,
                workers=args.workers,
                prepare=lambda dsn: _prepare(dsn, steps),
            )
        if args.command == "initdb":
            if not args.dsn:
                print("initdb: give --dsn or set DATABASE_URL", file=sys.stderr)
                return 2
            from .platform.dbinit import initdb

            initdb(args.dsn, args.files or None)
            print("schema and seed applied")
            return 0
        run = getattr(args, "run", None)
        if run is not None:
            code: int = run(args)
            return code
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unknown command {args.command}")


def _prepare(dsn: str, steps: Sequence[Callable[[str], None]]) -> None:
    """Before the workers start: one session key for all of them, then each capability's
    own preparation (the accounts' first users)."""
    from .platform.secret_key import ensure_secret_key
    from .platform.settings import Settings

    settings = Settings.from_env()
    # Workers are separate processes that read their settings from the environment.
    os.environ["SECRET_KEY"] = ensure_secret_key(settings.secret_key, settings.data_dir)
    for step in steps:
        step(dsn)


if __name__ == "__main__":
    sys.exit(main())
