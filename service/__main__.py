"""Command line: ``python -m service serve``, ``initdb``, ``users fake|load``, and the
commands that capabilities add (see ``CAPABILITY_COMMANDS``)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .accounts.seeding import SeedingError, SeedPlan
from .platform.settings import SettingsError

__all__ = ["CAPABILITY_COMMANDS", "main"]

# A capability with commands of its own has a module with
# ``add_commands(commands: argparse._SubParsersAction) -> None``; each parser it adds sets
# ``run=<function(args) -> exit code>`` with ``set_defaults``. Listing the module here is
# all the wiring a new command needs.
CAPABILITY_COMMANDS: tuple[str, ...] = (
    "service.images.cli",
    "service.scores.cli",
    "service.search.cli",
)


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
    users = commands.add_parser("users", help="fake users to a JSON file, or load such a file")
    actions = users.add_subparsers(dest="action", required=True)
    fake = actions.add_parser("fake", help="write fake users (Faker) to a JSON file")
    fake.add_argument("--count", type=_non_negative_int, default=25)
    fake.add_argument("--seed", type=int, default=0, help="the same seed, the same users")
    fake.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    load = actions.add_parser("load", help="register the users of a JSON file (all or none)")
    load.add_argument("file", type=Path)
    load.add_argument(
        "--dsn", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL"
    )
    for module in CAPABILITY_COMMANDS:
        importlib.import_module(module).add_commands(commands)
    return parser


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port (or $PORT) must be a number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
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
            plan = SeedPlan.from_env(os.environ)  # checked before anything starts
            return serve(
                host=args.host,
                port=args.port,
                workers=args.workers,
                prepare=lambda dsn: _prepare(dsn, plan),
            )
        if args.command == "initdb":
            if not args.dsn:
                print("initdb: give --dsn or set DATABASE_URL", file=sys.stderr)
                return 2
            from .platform.dbinit import initdb

            initdb(args.dsn, args.files or None)
            print("schema and seed applied")
            return 0
        if args.command == "users":
            return _users(args)
        run = getattr(args, "run", None)
        if run is not None:
            code: int = run(args)
            return code
    except (SettingsError, SeedingError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unknown command {args.command}")


def _users(args: argparse.Namespace) -> int:
    import trio

    from .accounts.fake_users import fake_users
    from .accounts.passwords import Passwords
    from .accounts.store import load_users
    from .accounts.users_file import UsersFileError, dump_users, parse_users

    if args.action == "fake":
        args.out.write_bytes(dump_users(fake_users(args.count, seed=args.seed)))
        print(f"wrote {args.count} fake users to {args.out}")
        return 0
    if not args.dsn:
        print("users load: give --dsn or set DATABASE_URL", file=sys.stderr)
        return 2
    try:
        users = parse_users(args.file.read_bytes())
    except OSError as exc:
        print(f"users load: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except UsersFileError as exc:
        print(f"users load: {args.file}: {exc}", file=sys.stderr)
        return 2
    refused: list[BaseException] = []
    loaded = 0
    try:
        loaded = trio.run(load_users, args.dsn, users, Passwords())
    except* UsersFileError as group:  # raised inside the trio-asyncio loop's nursery
        refused.append(_first_leaf(group))
    if refused:
        print(f"users load: {args.file}: {refused[0]}", file=sys.stderr)
        return 2
    print(f"loaded {loaded} users from {args.file}")
    return 0


def _prepare(dsn: str, plan: SeedPlan) -> None:
    """Before the workers start: one session key for all of them, the first users."""
    from .platform.secret_key import ensure_secret_key
    from .platform.settings import Settings

    settings = Settings.from_env()
    # Workers are separate processes that read their settings from the environment.
    os.environ["SECRET_KEY"] = ensure_secret_key(settings.secret_key, settings.data_dir)
    _seed_accounts(dsn, plan)


def _seed_accounts(dsn: str, plan: SeedPlan) -> None:
    """The first start's admin and fake users (on an empty users table only)."""
    import trio

    from .accounts.passwords import Passwords
    from .accounts.seeding import seed_accounts

    result = trio.run(seed_accounts, dsn, plan, Passwords())
    if not result.seeded:
        return
    print(
        f"accounts: created the admin {plan.admin_email} and {result.users_created - 1} fake users"
    )
    if result.generated_admin_password is not None:
        # Shown once, here; only its hash is stored.
        print(
            f"accounts: the admin's password is {result.generated_admin_password}"
            " (generated: set ADMIN_PASSWORD to choose one; shown only this once)",
            flush=True,
        )


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


if __name__ == "__main__":
    sys.exit(main())
