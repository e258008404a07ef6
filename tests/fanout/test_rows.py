from __future__ import annotations

from typing import Any

import pytest

from service.fanout.rows import InvalidRowsError, Row, merge_rows, validate_rows


def test_valid_rows_are_normalised_to_id_and_name() -> None:
    raw: list[dict[str, Any]] = [{"id": 2, "name": "b", "extra": True}, {"id": 1, "name": "a"}]
    assert validate_rows(raw) == [{"id": 2, "name": "b"}, {"id": 1, "name": "a"}]


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "no id"},
        {"id": 1},
        {"id": None, "name": "null id"},
        {"id": "1", "name": "string id"},
        {"id": 1.0, "name": "float id"},
        {"id": True, "name": "bool id"},
        {"id": 1, "name": None},
        {"id": 1, "name": 5},
    ],
)
def test_one_malformed_row_rejects_the_whole_answer(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidRowsError):
        validate_rows([{"id": 1, "name": "fine"}, bad])


def test_a_row_that_is_not_a_mapping_is_malformed() -> None:
    with pytest.raises(InvalidRowsError):
        validate_rows([42])  # type: ignore[list-item]


def test_merge_sorts_by_id_across_sources() -> None:
    merged = merge_rows(
        [
            [{"id": 3, "name": "c"}, {"id": 1, "name": "a"}],
            [{"id": 2, "name": "b"}],
        ]
    )
    assert [row["id"] for row in merged] == [1, 2, 3]


def test_merge_keeps_equal_ids_in_source_order() -> None:
    first: list[Row] = [{"id": 5, "name": "from first"}]
    second: list[Row] = [{"id": 5, "name": "from second"}, {"id": 1, "name": "one"}]
    merged = merge_rows([first, second])
    assert merged == [
        {"id": 1, "name": "one"},
        {"id": 5, "name": "from first"},
        {"id": 5, "name": "from second"},
    ]


def test_merge_of_nothing_is_empty() -> None:
    assert merge_rows([]) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "9" * 200_000, "name": "huge id"},
        {"id": 1, "name": ["n" * 1000] * 1000},
        {"id": {"k" * 1000: "v" * 200_000}, "name": "huge mapping id"},
    ],
    ids=["string-id", "list-name", "dict-id"],
)
def test_the_message_about_a_huge_bad_value_is_bounded(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidRowsError) as error:
        validate_rows([{"id": 1, "name": "fine"}, bad])
    message = str(error.value)
    assert message.startswith("row 1 has a non-")
    assert len(message) <= 200
