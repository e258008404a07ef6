"""``python -m service score --offset N [--seed S]``: generate a game and print the score at
one offset, for trying ``get_score`` by hand."""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from .game import generate_game
from .lookup import get_score

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``score`` command to the CLI's subcommands."""
    score = commands.add_parser(
        "score",
        help="generate a game and print the score at an offset",
        description="Generate a game and print the score at one offset (to try get_score).",
    )
    score.add_argument("--offset", type=int, required=True, help="the moment to ask about")
    score.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the same seed, the same game (default: a fresh one, printed so it can be repeated)",
    )
    score.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    """Print ``offset N: home H, away A`` and the game's seed and length; exit code 2 (and
    the reason on stderr) for an offset the game has no score for."""
    seed: int = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    game = generate_game(seed)
    try:
        home, away = get_score(game, args.offset)
    except ValueError as exc:
        print(f"score: {exc}", file=sys.stderr)
        return 2
    print(
        f"offset {args.offset}: home {home}, away {away}"
        f" (seed {seed}; the game's last stamp is at offset {game[-1]['offset']},"
        f" final score {game[-1]['score']['home']}-{game[-1]['score']['away']})"
    )
    return 0
