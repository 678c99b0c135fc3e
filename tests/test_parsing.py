"""The one JSON parser and exact letter scoring (upstream's substring hit must not come back)."""

from __future__ import annotations

import pytest

from culturesafe_ext.parsing import ChoiceAnswer, find_json_object, parse_choice_answer, parse_choice_letter

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


OPTIONS = ["Red envelopes containing money", "Fork\u00a0and spoon", "Chai (spiced tea)", "A clock"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a letter with its own option's text (normalised: case, spaces, no-break space, end punctuation)
        ('{"answer": "A. Red envelopes containing money"}', "A"),
        ('{"answer": "a) red envelopes  containing money."}', "A"),
        ('{"answer": "(B) Fork and spoon"}', "B"),
        ('```json\n{"answer": "C - Chai (spiced tea)"}\n```', "C"),
        ("D: a clock", "D"),
        ('{"answer": "B: FORK AND SPOON"}', "B"),
        ("The answer is A. Red envelopes containing money.", "A"),
        ("The correct answer is: (C) chai (spiced tea)", "C"),
        ('{"answer": "Answer: D - A clock"}', "D"),
        # still invalid: another option's text, several letters, prose without a letter, text only
        ('{"answer": "A. Fork and spoon"}', None),
        ('{"answer": "D. Red envelopes containing money"}', None),
        ('{"answer": "A and B"}', None),
        ('{"answer": "A. B. Red envelopes containing money"}', None),
        ('{"answer": "A. Red envelopes containing money B. Fork and spoon"}', None),
        ('{"answer": "Red envelopes containing money"}', None),
        ("The answer is B. Red envelopes containing money", None),
        ("I think A. Red envelopes containing money", None),
        ("The answer is A or B", None),
        ('{"answer": "A. Red envelopes"}', None),
        ('{"answer": "E. Red envelopes containing money"}', None),
    ],
)
def test_letter_with_its_own_option_text(text: str, expected: str | None) -> None:
    answer = parse_choice_answer(text, LETTERS, OPTIONS)
    assert answer.letter == expected
    assert answer.with_text == (expected is not None)


def test_letter_with_text_needs_the_options() -> None:
    # without the option texts a letter with text cannot be checked, so it stays invalid
    assert parse_choice_letter('{"answer": "A. Red envelopes containing money"}', LETTERS) is None
    assert parse_choice_answer('{"answer": "B"}', LETTERS, OPTIONS) == ChoiceAnswer("B", with_text=False)


@pytest.mark.parametrize(
    ("text", "expected", "with_text"),
    [
        # markup and quotes a human reader looks through (issue 28)
        ("**B**", "B", False),
        ("(B)", "B", False),
        ("B)", "B", False),
        ('"B"', "B", False),
        ("\u201cB\u201d", "B", False),
        ("Answer: B", "B", False),
        ("**Answer:** B", "B", False),
        ("<b>B</b>", "B", False),
        ("<strong>B</strong>.", "B", False),
        ("`B`", "B", False),
        ('{"answer": "**B**"}', "B", False),
        ('{"answer": "<b>C</b>"}', "C", False),
        ("**B. Fork and spoon**", "B", True),
        ("**B**. Fork and spoon", "B", True),
        ('"B. Fork and spoon"', "B", True),
        # still refused: several letters, another option's text, markup around several letters
        ("**B** or **C**", None, False),
        ("<b>A</b> <b>B</b>", None, False),
        ('"B" "C"', None, False),
        ("**B/C**", None, False),
        ("Answer: B and C", None, False),
        ("B, C", None, False),
        ("AB", None, False),
        ("**B**. Red envelopes containing money", None, False),
        ("Answer: A. Fork and spoon", None, False),
        ('{"answer": "**D**. Chai (spiced tea)"}', None, False),
    ],
)
def test_markup_around_the_letter_is_looked_through(text: str, expected: str | None, with_text: bool) -> None:
    assert parse_choice_answer(text, LETTERS, OPTIONS) == ChoiceAnswer(expected, with_text=with_text)
