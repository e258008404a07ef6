"""A game record and its generator: a list of stamps, each the score at one offset.

The record is plain data, as it would arrive as JSON: ``[{"offset": 0, "score": {"home": 0,
"away": 0}}, {"offset": 2, "score": {...}}, ...]``, offsets strictly increasing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypedDict

__all__ = [
    "HOME_SCORES_PROBABILITY",
    "OFFSET_STEPS",
    "SCORE_PROBABILITY",
    "STAMPS_AFTER_FIRST",
    "Score",
    "Stamp",
    "generate_game",
    "validate_game",
]

#: Stamps a generated game has after its first one (offset 0, score 0-0).
STAMPS_AFTER_FIRST = 50_000
#: The steps between two consecutive offsets, drawn uniformly.
OFFSET_STEPS = (1, 2, 3)
#: The chance that a stamp carries a goal (one goal, for one team).
SCORE_PROBABILITY = 0.0001
#: The chance that a goal is the home team's (else the away team's).
HOME_SCORES_PROBABILITY = 0.45


class Score(TypedDict):
    home: int
    away: int


class Stamp(TypedDict):
    offset: int
    score: Score


def generate_game(
    seed: int | random.Random | None = None,
    *,
    stamps: int = STAMPS_AFTER_FIRST,
    score_probability: float = SCORE_PROBABILITY,
    home_probability: float = HOME_SCORES_PROBABILITY,
) -> list[Stamp]:
    """A random game: a first stamp at offset 0 with score 0-0, then ``stamps`` more, each
    ``OFFSET_STEPS`` further on (uniformly) and, with ``score_probability``, one goal more
    for the home team (with ``home_probability``) or else the away team.

    ``seed`` makes it reproducible: an int (the same int, the same game) or a
    ``random.Random`` to draw from (it advances). ``None`` draws a fresh game each time. The
    keyword arguments default to the module constants; tests use them to sample faster.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | random.Random | None):
        raise TypeError(f"seed must be an int, a random.Random or None, got {seed!r}")
    if isinstance(stamps, bool) or not isinstance(stamps, int):
        raise TypeError(f"stamps must be an int, got {stamps!r}")
    if stamps < 0:
        raise ValueError(f"stamps must be >= 0, got {stamps}")
    for name, probability in (
        ("score_probability", score_probability),
        ("home_probability", home_probability),
    ):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {probability!r}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    # Local names: this loop runs 50,000 times per game.
    choice, draw = rng.choice, rng.random
    offset = home = away = 0
    game: list[Stamp] = [{"offset": 0, "score": {"home": 0, "away": 0}}]
    for _ in range(stamps):
        offset += choice(OFFSET_STEPS)
        if draw() < score_probability:
            if draw() < home_probability:
                home += 1
            else:
                away += 1
        game.append({"offset": offset, "score": {"home": home, "away": away}})
    return game


def validate_game(game_stamps: Sequence[Stamp]) -> None:
    """Check a whole record once, in O(n), before it is queried many times with
    ``get_score`` (whose O(log n) lookups rely on it and cannot afford to check it).

    Raises ``ValueError`` naming the first bad stamp unless: there is at least one stamp;
    the first is at offset 0 with score 0-0; every stamp is ``{"offset": int, "score":
    {"home": int, "away": int}}`` (ints, not bools); offsets strictly increase; and neither
    team's score ever goes down (so none is negative).
    """
    if len(game_stamps) == 0:
        raise ValueError("a game has at least one stamp, got none")
    previous: tuple[int, int, int] | None = None
    for index, stamp in enumerate(game_stamps):
        offset, home, away = _stamp_fields(stamp, index)
        if previous is None:
            if (offset, home, away) != (0, 0, 0):
                raise ValueError(
                    f"stamp 0: a game starts at offset 0 with score 0-0, got offset {offset},"
                    f" score {home}-{away}"
                )
        else:
            if offset <= previous[0]:
                raise ValueError(
                    f"stamp {index}: offsets must strictly increase, got {offset} after"
                    f" {previous[0]}"
                )
            if home < previous[1] or away < previous[2]:
                raise ValueError(
                    f"stamp {index}: a score never goes down, got {home}-{away} after"
                    f" {previous[1]}-{previous[2]}"
                )
        previous = (offset, home, away)


def _stamp_fields(stamp: object, index: int) -> tuple[int, int, int]:
    """(offset, home, away) of one stamp, or ``ValueError`` saying what is wrong with it."""
    score = stamp.get("score") if isinstance(stamp, dict) else None
    if isinstance(stamp, dict) and isinstance(score, dict):
        offset = _strict_int(stamp.get("offset"))
        home, away = _strict_int(score.get("home")), _strict_int(score.get("away"))
        if offset is not None and home is not None and away is not None:
            return offset, home, away
    raise ValueError(
        f'stamp {index}: a stamp is {{"offset": int, "score": {{"home": int, "away": int}}}},'
        f" got {stamp!r}"
    )


def _strict_int(value: object) -> int | None:
    """``value`` if it is an int (a bool is not, though Python says so), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
