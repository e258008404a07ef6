"""The score at any moment of a game record, by binary search on its offsets."""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Sequence

from .game import Stamp

__all__ = ["get_score"]

_stamp_offset = operator.itemgetter("offset")


def get_score(game_stamps: Sequence[Stamp], offset: int) -> tuple[int, int]:
    """``(home, away)`` at the moment ``offset``: the score of the last stamp at or before it.

    Offsets step by 1 to 3, so most moments have no stamp of their own; between two stamps
    the score is the earlier one's (nothing has happened yet). Past the last stamp it is the
    last stamp's score: the record ends there, and its final score stands.

    Errors, rather than a guess:

    - ``TypeError`` when ``offset`` is not an integer (``int``, or anything with
      ``__index__``), or is a ``bool``: ``True`` would silently mean offset 1, and a float
      such as ``2.5`` usually means seconds passed where stamps count offsets.
    - ``ValueError`` for an empty record (there is no score to give), and for an offset
      before the first stamp, negative ones included: no score is recorded there, and
      ``(0, 0)`` would hide a caller's bug (a negative offset is not counted from the end).
    - ``ValueError`` when the first stamp's offset is after the last one's (a record given
      newest first): a check that costs two reads.

    The stamps must be in strictly increasing offset order, as ``generate_game`` makes them.
    That is a precondition, not checked beyond the ends: checking it needs every stamp,
    O(n), which would undo the point of this function. On a record whose middle is out of
    order the answer is some stamp's score, not necessarily the right one; check a record
    from elsewhere once with ``validate_game`` before querying it.

    O(log n) per call: a binary search (``bisect`` with a key) on the list as given, which
    reads at most ceil(log2(n + 1)) + 3 stamps and copies nothing.
    """
    if isinstance(offset, bool):
        raise TypeError(f"offset must be an integer, not a bool ({offset!r})")
    try:
        moment = operator.index(offset)
    except TypeError:
        raise TypeError(
            f"offset must be an integer, got {type(offset).__name__} {offset!r}"
        ) from None
    if len(game_stamps) == 0:
        raise ValueError("the game has no stamps, so no score at any offset")
    first, last = game_stamps[0]["offset"], game_stamps[-1]["offset"]
    if first > last:
        raise ValueError(
            f"stamps must be in increasing offset order; the first is at offset {first},"
            f" after the last at {last} (newest first?)"
        )
    if moment < first:
        raise ValueError(
            f"offset {moment} is before the first stamp (offset {first}): no score is"
            " recorded there"
        )
    index = bisect_right(game_stamps, moment, key=_stamp_offset) - 1
    score = game_stamps[index]["score"]
    return score["home"], score["away"]
