"""``python -m service users fake|load``, and the first start's users (``serve`` runs
``prepare`` once, before its workers start)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .seeding import SeedPlan

__all__ = ["add_commands", "prepare"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``users fake`` and ``users load`` to the CLI's subcommands."""
    from os import environ

    users = commands.add_parser("users", help="fake users to a JSON file, or load such a file")
    actions = users.add_subparsers(dest="action", required=True)
    fake = actions.add_parser("fake", help="write fake users (Faker) to a JSON file")
    fake.add_argument("--count", type=_non_negative_int, default=25)
    fake.add_argument("--seed", type=int, default=0, help="the same seed, the same users")
    fake.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    load = actions.add_parser("load", help="register the users of a JSON file (all or none)")
    load.add_argument("file", type=Path)
    load.add_argument("--dsn", default=environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    users.set_defaults(run=run_users)


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def run_users(args: argparse.Namespace) -> int:
    import trio

    from .fake_users import fake_users
    from .passwords import Passwords
    from .store import load_users
    from .users_file import UsersFileError, dump_users, parse_users

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


def prepare(env: Mapping[str, str]) -> Callable[[str], None]:
    """Check the first start's plan now (a bad ``ADMIN_EMAIL`` stops ``serve`` before
    anything starts); the function returned seeds the database given, before the workers."""
    plan = SeedPlan.from_env(env)
    return lambda dsn: _seed_accounts(dsn, plan)


def _seed_accounts(dsn: str, plan: SeedPlan) -> None:
    """The first start's admin and fake users (on an empty users table only)."""
    import trio

    from .passwords import Passwords
    from .seeding import seed_accounts

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
