"""The trivial knowledge baselines a score must beat: random choice and always the most frequent gold letter.

One definition for the dataset card (``culturesafe build``/``generate``: a flat mean over questions) and the
analysis report (averaged per description, like the metric). Under CircularEval a question counts only if
right in every rotation: random choice is (1/n)^n, and a constant letter is right in one rotation only (0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def majority_letter(gold_letters: Iterable[str]) -> tuple[str, int, int]:
    """The most frequent gold letter, how often it is gold, and of how many questions ("-" when none)."""
    letters = Counter(gold_letters)
    n = sum(letters.values())
    if not n:
        return "-", 0, 0
    letter, count = letters.most_common(1)[0]
    return letter, count, n


def random_choice(n_options: int, circular: bool = False) -> float:
    """Chance that a uniformly random answer is right (in every rotation under CircularEval)."""
    return (1 / n_options) ** (n_options if circular else 1)


def constant_letter(gold_letter: str, letter: str, circular: bool = False) -> float:
    """1.0 when always answering ``letter`` is right for this question (never under CircularEval)."""
    return 0.0 if circular else float(gold_letter == letter)
