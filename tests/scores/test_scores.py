"""Game scores (issue 15): ``get_score`` on hand-made records for each use case and edge,
the generator's invariants, ``get_score`` against a linear scan at every offset of generated
games, ``validate_game``, and the ``score`` command. ``unittest.TestCase`` by the issue's
request: ``python -m unittest tests.scores.test_scores`` and pytest both run it."""

# ruff: noqa: PT009, PT027  (unittest's assertions, as the issue asks for unittest)

from __future__ import annotations

import contextlib
import io
import itertools
import math
import random
import re
import unittest
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any, overload

from service.__main__ import main
from service.scores import (
    OFFSET_STEPS,
    STAMPS_AFTER_FIRST,
    Stamp,
    generate_game,
    get_score,
    validate_game,
)

PROPERTY_SEEDS = (1, 2)


def stamp(offset: int, home: int, away: int) -> Stamp:
    return {"offset": offset, "score": {"home": home, "away": away}}


#: Stamps at 0, 2, 3, 6, 7; goals at 3 (home) and 6 (away).
GAME = [stamp(0, 0, 0), stamp(2, 0, 0), stamp(3, 1, 0), stamp(6, 1, 1), stamp(7, 1, 1)]


def goals_of(stamp: Stamp) -> int:
    return stamp["score"]["home"] + stamp["score"]["away"]


@cache
def seeded_game(seed: int) -> list[Stamp]:
    """One generated game per seed for the whole module (each takes ~0.15 s to make)."""
    return generate_game(seed)


def scores_by_linear_scan(stamps: Sequence[Stamp], offsets: range) -> list[tuple[int, int]]:
    """The oracle: walk the stamps once from the start, alongside the offsets (ascending),
    keeping the score of the last stamp at or before each."""
    scores: list[tuple[int, int]] = []
    position = 0
    for offset in offsets:
        while position + 1 < len(stamps) and stamps[position + 1]["offset"] <= offset:
            position += 1
        score = stamps[position]["score"]
        scores.append((score["home"], score["away"]))
    return scores


class CountingStamps(Sequence[Stamp]):
    """A read-only sequence of stamps that counts how many stamps are read from it."""

    def __init__(self, stamps: list[Stamp]) -> None:
        self._stamps = stamps
        self.reads = 0

    def __len__(self) -> int:
        return len(self._stamps)

    @overload
    def __getitem__(self, index: int) -> Stamp: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Stamp]: ...
    def __getitem__(self, index: int | slice) -> Stamp | Sequence[Stamp]:
        if isinstance(index, slice):
            items = self._stamps[index]
            self.reads += len(items)
            return items
        self.reads += 1
        return self._stamps[index]

    def __iter__(self) -> Iterator[Stamp]:
        self.reads += len(self._stamps)
        return iter(self._stamps)


class GetScoreTest(unittest.TestCase):
    def test_offset_of_a_stamp_returns_that_stamps_score(self) -> None:
        self.assertEqual(get_score(GAME, 3), (1, 0))

    def test_offset_between_stamps_returns_score_of_previous_stamp(self) -> None:
        self.assertEqual(get_score(GAME, 5), (1, 0))

    def test_offset_of_first_stamp_returns_its_score(self) -> None:
        self.assertEqual(get_score(GAME, 0), (0, 0))

    def test_offset_of_last_stamp_returns_final_score(self) -> None:
        self.assertEqual(get_score([*GAME, stamp(9, 2, 1)], 9), (2, 1))

    def test_offset_past_last_stamp_returns_final_score(self) -> None:
        self.assertEqual(get_score(GAME, 10**12), (1, 1))

    def test_single_stamp_record_gives_its_score_from_its_offset_on(self) -> None:
        self.assertEqual(get_score([stamp(4, 2, 3)], 5), (2, 3))

    def test_integer_like_offset_with_index_method_is_accepted(self) -> None:
        class Five:
            def __index__(self) -> int:
                return 5

        offset: Any = Five()
        self.assertEqual(get_score(GAME, offset), (1, 0))

    def test_negative_offset_raises_value_error(self) -> None:
        with self.assertRaisesRegex(ValueError, "offset -1 is before the first stamp"):
            get_score(GAME, -1)

    def test_offset_before_first_stamp_raises_value_error(self) -> None:
        late_start = [stamp(10, 0, 0), stamp(12, 1, 0)]
        with self.assertRaisesRegex(ValueError, r"offset 9 is before the first stamp \(offset 10"):
            get_score(late_start, 9)

    def test_empty_record_raises_value_error(self) -> None:
        with self.assertRaisesRegex(ValueError, "no stamps"):
            get_score([], 0)

    def test_non_integer_offset_raises_type_error(self) -> None:
        for offset in (2.0, "2", None):
            with self.subTest(offset=offset), self.assertRaisesRegex(TypeError, "integer"):
                get_score(GAME, offset)  # type: ignore[arg-type]

    def test_bool_offset_raises_type_error(self) -> None:
        with self.assertRaisesRegex(TypeError, "not a bool"):
            get_score(GAME, True)

    def test_stamps_newest_first_raise_value_error(self) -> None:
        with self.assertRaisesRegex(ValueError, "increasing offset order"):
            get_score(GAME[::-1], 3)

    def test_lookup_reads_about_log2_n_stamps_and_copies_none(self) -> None:
        stamps = CountingStamps(seeded_game(PROPERTY_SEEDS[0]))
        for offset in (0, 1, 54_321, stamps[-1]["offset"], 10**9):
            stamps.reads = 0
            get_score(stamps, offset)
            # The binary search's probes, plus the first, the last and the found stamp.
            self.assertLessEqual(stamps.reads, math.ceil(math.log2(len(stamps) + 1)) + 3)


class PropertyTest(unittest.TestCase):
    def test_score_at_every_offset_of_generated_games_matches_a_linear_scan(self) -> None:
        games = {f"seed {seed}": seeded_game(seed) for seed in PROPERTY_SEEDS}
        # The default games have about 5 goals each; this one has about 250 score changes.
        games["goal-rich"] = generate_game(4, stamps=5_000, score_probability=0.05)
        for name, game in games.items():
            with self.subTest(game=name):
                offsets = range(game[0]["offset"], game[-1]["offset"] + 3)
                wrong = [
                    (offset, got, expected)
                    for offset, expected in zip(
                        offsets, scores_by_linear_scan(game, offsets), strict=True
                    )
                    if (got := get_score(game, offset)) != expected
                ]
                # The first few (offset, got, expected): a diff of 100,000 scores would not help.
                self.assertEqual(wrong[:5], [])


class GenerateGameTest(unittest.TestCase):
    def test_game_starts_at_offset_zero_with_no_score_and_has_50000_stamps_more(self) -> None:
        game = seeded_game(PROPERTY_SEEDS[0])
        self.assertEqual(game[0], stamp(0, 0, 0))
        self.assertEqual(len(game), 1 + STAMPS_AFTER_FIRST)
        self.assertEqual(STAMPS_AFTER_FIRST, 50_000)

    def test_offsets_advance_by_one_two_or_three_each_uniformly(self) -> None:
        steps = [
            b["offset"] - a["offset"]
            for seed in PROPERTY_SEEDS
            for a, b in itertools.pairwise(seeded_game(seed))
        ]
        self.assertEqual(set(steps), set(OFFSET_STEPS))
        self.assertEqual(OFFSET_STEPS, (1, 2, 3))
        for step in OFFSET_STEPS:
            # 100,000 draws: one standard deviation of a share is about 0.0015.
            self.assertAlmostEqual(steps.count(step) / len(steps), 1 / 3, delta=0.01)

    def test_each_stamp_adds_at_most_one_goal_to_one_team(self) -> None:
        for seed in PROPERTY_SEEDS:
            game = seeded_game(seed)
            for a, b in itertools.pairwise(game):
                home = b["score"]["home"] - a["score"]["home"]
                away = b["score"]["away"] - a["score"]["away"]
                self.assertIn((home, away), {(0, 0), (1, 0), (0, 1)}, msg=f"seed {seed}")

    def test_goals_are_rare_at_one_stamp_in_ten_thousand(self) -> None:
        goals = sum(goals_of(seeded_game(seed)[-1]) for seed in PROPERTY_SEEDS)
        # 100,000 stamps at 1e-4 make 10 goals on average: 0 or over 40 is all but impossible.
        self.assertGreater(goals, 0)
        self.assertLessEqual(goals, 40)

    def test_score_probability_is_the_share_of_stamps_with_a_goal(self) -> None:
        game = generate_game(11, stamps=20_000, score_probability=0.3)
        goals = goals_of(game[-1])
        self.assertAlmostEqual(goals / 20_000, 0.3, delta=0.02)

    def test_home_team_scores_45_percent_of_goals(self) -> None:
        game = generate_game(12, stamps=20_000, score_probability=1.0)
        self.assertEqual(goals_of(game[-1]), 20_000)
        self.assertAlmostEqual(game[-1]["score"]["home"] / 20_000, 0.45, delta=0.02)

    def test_same_seed_gives_the_same_game(self) -> None:
        self.assertEqual(generate_game(5, stamps=200), generate_game(5, stamps=200))

    def test_random_instance_is_drawn_from_and_advances(self) -> None:
        rng = random.Random(5)
        first = generate_game(rng, stamps=200)
        self.assertEqual(first, generate_game(5, stamps=200))
        self.assertNotEqual(generate_game(rng, stamps=200), first)

    def test_without_seed_each_game_is_new(self) -> None:
        self.assertNotEqual(generate_game(stamps=200), generate_game(stamps=200))

    def test_generated_game_passes_validation(self) -> None:
        validate_game(seeded_game(PROPERTY_SEEDS[0]))

    def test_bad_arguments_are_rejected_naming_the_argument(self) -> None:
        bad: list[tuple[dict[str, Any], type[Exception]]] = [
            ({"seed": "7"}, TypeError),
            ({"seed": 7.0}, TypeError),
            ({"stamps": -1}, ValueError),
            ({"stamps": 10.0}, TypeError),
            ({"score_probability": 1.5}, ValueError),
            ({"home_probability": -0.1}, ValueError),
        ]
        for kwargs, error in bad:
            (name,) = kwargs
            with self.subTest(**kwargs), self.assertRaisesRegex(error, f"^{name} must be"):
                generate_game(**kwargs)


class ValidateGameTest(unittest.TestCase):
    def test_empty_record_is_rejected(self) -> None:
        with self.assertRaisesRegex(ValueError, "at least one stamp"):
            validate_game([])

    def test_stamps_out_of_order_are_rejected_naming_the_stamp(self) -> None:
        swapped = [GAME[0], GAME[2], GAME[1], *GAME[3:]]
        with self.assertRaisesRegex(ValueError, "stamp 2: offsets must strictly increase"):
            validate_game(swapped)

    def test_repeated_offset_is_rejected(self) -> None:
        with self.assertRaisesRegex(ValueError, "stamp 2: offsets must strictly increase"):
            validate_game([stamp(0, 0, 0), stamp(2, 0, 0), stamp(2, 0, 0)])

    def test_record_not_starting_at_offset_zero_with_no_score_is_rejected(self) -> None:
        for first in (stamp(1, 0, 0), stamp(0, 1, 0), stamp(0, 0, 1)):
            with self.subTest(first=first), self.assertRaisesRegex(ValueError, "stamp 0"):
                validate_game([first, stamp(5, 1, 1)])

    def test_score_going_down_is_rejected(self) -> None:
        for last in (stamp(9, 0, 1), stamp(9, 1, 0)):
            with self.subTest(last=last), self.assertRaisesRegex(ValueError, "never goes down"):
                validate_game([*GAME, last])

    def test_malformed_stamp_is_rejected(self) -> None:
        malformed: list[Any] = [
            None,
            {"offset": 9},
            {"offset": True, "score": {"home": 1, "away": 1}},
            {"offset": 9, "score": {"home": "2", "away": 1}},
            {"offset": 9, "score": {"home": 1}},
        ]
        for bad in malformed:
            with self.subTest(stamp=bad), self.assertRaisesRegex(ValueError, "stamp 5: a stamp is"):
                validate_game([*GAME, bad])


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``python -m service <argv>`` in-process: (exit code, stdout, stderr); a usage error
    (argparse's SystemExit) gives its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


class ScoreCommandTest(unittest.TestCase):
    def test_prints_the_score_of_the_seeded_game_at_the_offset(self) -> None:
        game = seeded_game(PROPERTY_SEEDS[0])
        offset = game[-1]["offset"] - 1  # late, so that some goals have been scored
        home, away = get_score(game, offset)
        code, out, err = run_cli("score", "--offset", str(offset), "--seed", "1")
        self.assertEqual((code, err), (0, ""))
        self.assertTrue(out.startswith(f"offset {offset}: home {home}, away {away} (seed 1;"))

    def test_without_seed_prints_the_seed_that_repeats_the_game(self) -> None:
        code, out, _ = run_cli("score", "--offset", "100000")
        self.assertEqual(code, 0)
        found = re.search(r"home (\d+), away (\d+) \(seed (\d+);", out)
        assert found is not None, out
        home, away, seed = map(int, found.groups())
        self.assertEqual(get_score(generate_game(seed), 100_000), (home, away))

    def test_offset_before_the_game_exits_2_with_the_reason(self) -> None:
        code, out, err = run_cli("score", "--offset", "-5", "--seed", "1")
        self.assertEqual((code, out), (2, ""))
        self.assertIn("offset -5 is before the first stamp", err)

    def test_non_integer_offset_is_a_usage_error(self) -> None:
        code, out, err = run_cli("score", "--offset", "2.5")
        self.assertEqual((code, out), (2, ""))
        self.assertIn("--offset: invalid int value: '2.5'", err)

    def test_missing_offset_is_a_usage_error(self) -> None:
        code, _, err = run_cli("score", "--seed", "1")
        self.assertEqual(code, 2)
        self.assertIn("the following arguments are required: --offset", err)


if __name__ == "__main__":
    unittest.main()
