"""Row validation and the stable merge: the data rules of the fan-out, free of I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, TypedDict

from ..platform.redact import short_repr

__all__ = ["InvalidRowsError", "Row", "merge_rows", "validate_rows"]


class Row(TypedDict):
    """One item of the answer: ``{"id": int, "name": str}``."""

    id: int
    name: str


class InvalidRowsError(ValueError):
    """A source answered with at least one malformed row; its whole answer is dropped."""


def validate_rows(raw_rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Check every row of one source and return them as plain :class:`Row` dicts.

    All or nothing: one row with a missing or non-integer ``id`` (booleans are not
    integers here) or a missing or non-string ``name`` rejects the whole answer,
    because a half-read source would silently hide data. The error shows the bad
    value bounded in size: it comes from a remote source and ends up in a log line.
    """
    rows: list[Row] = []
    append = rows.append
    for index, raw in enumerate(raw_rows):
        try:
            row_id = raw["id"]
            name = raw["name"]
        except (KeyError, TypeError, IndexError) as exc:
            raise InvalidRowsError(f"row {index} lacks an 'id' or a 'name'") from exc
        if type(row_id) is not int:
            raise InvalidRowsError(f"row {index} has a non-integer id {short_repr(row_id)}")
        if type(name) is not str:
            raise InvalidRowsError(f"row {index} has a non-string name {short_repr(name)}")
        append({"id": row_id, "name": name})
    return rows


_BY_ID = itemgetter("id")


def merge_rows(per_source: Iterable[list[Row]]) -> list[Row]:
    """Merge the rows of several sources into one list sorted by id.

    The sort is stable: rows with equal ids keep the order of their sources (as
    given) and, within a source, the order the source returned them in.
    """
    merged: list[Row] = []
    for rows in per_source:
        merged.extend(rows)
    merged.sort(key=_BY_ID)
    return merged
