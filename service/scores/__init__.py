"""Game scores: a library over plain data. ``generate_game()`` makes a match
record (a list of stamps ``{"offset": int, "score": {"home": int, "away": int}}``),
``get_score(stamps, offset)`` gives ``(home, away)`` at any moment in O(log n), and
``validate_game()`` checks a record from elsewhere once. No I/O, no web pages; the CLI
command ``python -m service score`` lives in ``cli.py``. See docs/scores.md."""

from .game import HOME_SCORES_PROBABILITY as HOME_SCORES_PROBABILITY
from .game import OFFSET_STEPS as OFFSET_STEPS
from .game import SCORE_PROBABILITY as SCORE_PROBABILITY
from .game import STAMPS_AFTER_FIRST as STAMPS_AFTER_FIRST
from .game import Score as Score
from .game import Stamp as Stamp
from .game import generate_game as generate_game
from .game import validate_game as validate_game
from .lookup import get_score as get_score

__all__ = [
    "HOME_SCORES_PROBABILITY",
    "OFFSET_STEPS",
    "SCORE_PROBABILITY",
    "STAMPS_AFTER_FIRST",
    "Score",
    "Stamp",
    "generate_game",
    "get_score",
    "validate_game",
]
