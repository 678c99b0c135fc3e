"""argparse types for every numeric option of the ``culturesafe`` commands: one place, one kind of error.

Why: a negative ``--limit``, a share of 1.5 or a ``nan`` threshold used to travel into lm_eval, scikit-learn
or a judge request and fail there, far from the option that caused it (or not at all). Each type here
refuses such a value while the command line is read, so argparse ends with one line naming the option::

    culturesafe demo: error: argument --limit: must be a whole number >= 1, got '-1'

Use them as ``type=`` of ``add_argument``: :func:`share` (a float in [0, 1]), :func:`count` (an int >= 0),
:func:`positive_int` (an int >= 1), :func:`finite` (any finite float), :func:`positive_float` (a finite
float > 0), :func:`non_negative_float` (a finite float >= 0), :func:`batch_size` (an int >= 1 or ``auto``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _int(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
    return value


def finite(text: str) -> float:
    """Any finite float (no ``nan``, ``inf``)."""
    return _float(text)


def share(text: str) -> float:
    """A share (a rate, a fraction): a finite float in [0, 1]."""
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0 (a learning rate, a regularisation strength)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite float >= 0 (a tolerance, a temperature, a dropout)."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def count(text: str) -> int:
    """A count that may be zero (a seed, a number of spot checks, of permutations)."""
    return _int(text, 0)


def positive_int(text: str) -> int:
    """A count of at least one (a limit, a batch size, a number of steps)."""
    return _int(text, 1)


def in_range(low: float, high: float) -> Callable[[str], float]:
    """A finite float in [low, high] (e.g. a 1..10 judge score threshold)."""

    def parse(text: str) -> float:
        value = _float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text!r}")
        return value

    parse.__name__ = f"number in [{low:g}, {high:g}]"
    return parse


def batch_size(text: str) -> str:
    """lm_eval's ``--batch_size``: a whole number >= 1, ``auto`` or ``auto:N`` (kept as text for lm_eval)."""
    if text == "auto":
        return text
    if text.startswith("auto:"):
        positive_int(text[len("auto:") :])
        return text
    return str(positive_int(text))
