"""The one JSON parser and exact letter scoring (upstream's substring hit must not come back)."""

from __future__ import annotations

import pytest

from culturesafe_ext.parsing import find_json_object, parse_choice_letter

LETTERS = ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"answer": "B"}', "B"),
        ('```json\n{"answer": "c"}\n```', "C"),
        ('Sure! {"answer": "(D)"} hope that helps', "D"),
        ("B", "B"),
        (" (a). ", "A"),
        ('{"answer": "B/C"}', None),
        ("B/C", None),
        ("The answer is B or C", None),
        ('{"answer": "E"}', None),
        ('{"answer": ["B"]}', None),
        ('{"letter": "B"}', None),
        ("", None),
        ('{"answer": "<one of A, B, C, D"}', None),
    ],
)
def test_parse_choice_letter(text: str, expected: str | None) -> None:
    assert parse_choice_letter(text, LETTERS) == expected


def test_find_json_object_skips_broken_braces() -> None:
    assert find_json_object('use {curly} then {"score": 7} then {"score": 8}') == {"score": 7}
    assert find_json_object("no json here") is None
    assert find_json_object('```\n[1, 2]\n```\n{"a": 1}') == {"a": 1}
