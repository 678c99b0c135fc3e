"""Aggregations the paper's protocol needs and lm-eval lacks: per-description means and CircularEval.

lm-eval aggregates a metric over a flat list of per-document values. These take tuples that carry
the grouping key, which ``process_results`` puts there.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Hashable, Iterable
from functools import lru_cache

log = logging.getLogger("culturesafe")


def description_means(items: Iterable[tuple[Hashable, float | None]]) -> dict[Hashable, float]:
    """Each description's mean over its items with a value (the paper's first averaging step).

    The key is whatever identifies a description to the caller (its id here, ``(country, id)`` in the
    analysis); ``None`` values are left out.
    """
    groups: dict[Hashable, list[float]] = defaultdict(list)
    for key, value in items:
        if value is not None:
            groups[key].append(float(value))
    return {key: sum(v) / len(v) for key, v in groups.items()}


def mean_by_description(items: Iterable[tuple[str, float | None]]) -> float:
    """Mean over descriptions of the mean over each description's items (the paper's averaging).

    ``None`` (an item the judge could not score) is left out of the mean; the safety tasks count and
    report those items in ``judge_failures`` beside it.
    """
    means = description_means(items)
    return sum(means.values()) / len(means) if means else float("nan")


def circular_questions(items: Iterable[tuple[str, str, int, int]]) -> dict[str, tuple[str, bool]]:
    """question id -> (description id, answered right in every rotation); incomplete ones are logged."""
    seen: dict[str, list] = {}
    for question_id, description_id, correct, n_rotations in items:
        entry = seen.setdefault(question_id, [description_id, 0, 0, n_rotations])
        entry[1] += 1
        entry[2] += int(correct)
    complete = {q: (d, ok == n) for q, (d, seen_n, ok, n) in seen.items() if seen_n == n}
    if len(complete) < len(seen):
        log.warning(
            "culturesafe: %d of %d questions lack some rotations (e.g. --limit cut them): scored on the %d complete",
            len(seen) - len(complete),
            len(seen),
            len(complete),
        )
    return complete


def circular_acc(items: Iterable[tuple[str, str, int, int]]) -> float:
    """CircularEval: share of questions answered right in every rotation of their options."""
    questions = circular_questions(items)
    if not questions:
        return float("nan")
    return sum(ok for _, ok in questions.values()) / len(questions)


def circular_acc_by_description(items: Iterable[tuple[str, str, int, int]]) -> float:
    """CircularEval accuracy averaged per description first."""
    return mean_by_description((d, float(ok)) for d, ok in circular_questions(items).values())


def total(items: Iterable[float]) -> float:
    """A count over the task's docs (e.g. judge failures), not a rate."""
    return float(sum(items))


def mean_or_none(items: Iterable[float | None]) -> float | None:
    """Mean over the values that are defined; ``None`` when there are none (a per-doc value, not a metric)."""
    values = [float(v) for v in items if v is not None]
    return sum(values) / len(values) if values else None


def mean_defined(items: Iterable[float | None]) -> float:
    """Mean over the docs that have a value; ``None`` (every judgement of the doc failed) is left out
    and counted in the task's ``*judge_failures`` metrics instead."""
    mean = mean_or_none(items)
    return float("nan") if mean is None else mean


def hhh_avg(items: Iterable[tuple[float | None, float | None, float | None]]) -> float:
    """AlignCultura's Avg = (WR + TI - SS) / 3, each rate the mean over the docs that have it."""
    rows = list(items)
    wr, ti, ss = zip(*rows, strict=True) if rows else ((), (), ())
    return (mean_defined(wr) + mean_defined(ti) - mean_defined(ss)) / 3


def run_std(items: Iterable[list[float | None]]) -> float:
    """Spread over repeated runs: the standard deviation (n-1) of the per-run means over the docs.

    Each item is one doc's list of per-run values (``repeats`` of them); run k's mean is taken over
    the docs whose run k has a value. NaN with fewer than two runs.
    """
    per_doc = list(items)
    runs = max((len(v) for v in per_doc), default=0)
    means = [mean_defined(v[k] for v in per_doc if k < len(v)) for k in range(runs)]
    means = [m for m in means if m == m]
    if len(means) < 2:
        return float("nan")
    mu = sum(means) / len(means)
    return (sum((m - mu) ** 2 for m in means) / (len(means) - 1)) ** 0.5


def ratio(items: Iterable[tuple[float, float]]) -> float:
    """Sum of numerators over sum of denominators (e.g. first-position picks over decisive verdicts)."""
    pairs = list(items)
    den = sum(d for _, d in pairs)
    return sum(n for n, _ in pairs) / den if den else float("nan")


def panel_alpha(items: Iterable[list[list[float | None]]]) -> float:
    """Krippendorff's alpha (interval) between a panel's judges over every judged response of the task."""
    from culturesafe_ext.judge.panel import alpha

    return alpha([unit for units in items for unit in units])


def panel_alpha_ci_low(items: Iterable[list[list[float | None]]]) -> float:
    """Lower end of the seeded bootstrap 95% CI of :func:`panel_alpha` (responses resampled)."""
    return _alpha_ci(_units_key(items))[0]


def panel_alpha_ci_high(items: Iterable[list[list[float | None]]]) -> float:
    """Upper end of the seeded bootstrap 95% CI of :func:`panel_alpha`."""
    return _alpha_ci(_units_key(items))[1]


def _units_key(items: Iterable[list[list[float | None]]]) -> tuple:
    return tuple(tuple(unit) for units in items for unit in units)


@lru_cache(maxsize=8)
def _alpha_ci(units: tuple) -> tuple[float, float]:
    """One bootstrap per task and dimension, shared by the CI's two ends."""
    from culturesafe_ext.judge.panel import alpha_ci

    return alpha_ci(units)
