"""Row-validation messages that mutation testing showed were unchecked (docs/mutation.md)."""

from __future__ import annotations

from typing import Any

import pytest

from service.fanout.rows import InvalidRowsError, validate_rows


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "a"}, "row 1 lacks an 'id' or a 'name'"),
        ({"id": "7", "name": "a"}, "row 1 has a non-integer id '7'"),
        ({"id": 7, "name": 8}, "row 1 has a non-string name 8"),
    ],
)
def test_a_bad_row_is_named_with_its_index_and_value(row: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRowsError) as caught:
        validate_rows([{"id": 1, "name": "ok"}, row])
    assert str(caught.value) == message
