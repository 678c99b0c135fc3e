"""A judge panel: every judge scores every item, concurrently and each from its own cache entries.

Why panels: one LLM judge carries its own biases; the mean (or median) of several is steadier, and how
far they agree (Krippendorff's alpha, interval level, from the ``krippendorff`` package) tells the user
how much the number can be trusted. Each judge is a full :class:`~culturesafe_ext.judge.Judge`, so its
failures stay its own counted results; the panel's score of an item is the aggregate of the judges that
scored it, ``None`` when none did.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from culturesafe_ext.judge.agreement import bootstrap, krippendorff_alpha, percentile_ci
from culturesafe_ext.judge.items import JudgeItem, JudgeResult, JudgeSummary
from culturesafe_ext.judge.judge import Judge
from culturesafe_ext.judge.settings import PanelConfig

AGGREGATES = {"mean": statistics.fmean, "median": statistics.median}


@dataclass
class PanelResult:
    """One item's verdicts: each judge's result (in panel order) and the panel's aggregate score."""

    dimension: str
    judges: list[JudgeResult]
    aggregate: str = "mean"

    @property
    def score(self) -> float | None:
        scores = [r.score for r in self.judges if r.score is not None]
        return float(AGGREGATES[self.aggregate](scores)) if scores else None

    def to_dict(self) -> dict[str, Any]:
        """What the logged samples keep: the panel score and every judge's full result."""
        error = None if self.score is not None else "no judge of the panel scored this item"
        return {
            "dimension": self.dimension,
            "score": self.score,
            "panel_aggregate": self.aggregate,
            "error": error,
            "judges": [r.to_dict() for r in self.judges],
        }


class Panel:
    """Scores items with every judge of a :class:`PanelConfig`; see :attr:`last_summaries`."""

    def __init__(self, config: PanelConfig) -> None:
        self.config = config
        self.judges = [Judge(c) for c in config.judges]
        self.last_summaries: list[JudgeSummary] = []

    def score_many(self, items: Sequence[JudgeItem]) -> list[PanelResult]:
        """One result per item, in input order; the judges run at the same time (one thread each)."""
        with ThreadPoolExecutor(max_workers=len(self.judges), thread_name_prefix="judge-panel") as pool:
            per_judge = list(pool.map(lambda judge: judge.score_many(items), self.judges))
        self.last_summaries = [j.last_summary or JudgeSummary.of([]) for j in self.judges]
        return [
            PanelResult(dimension=item.dimension, judges=list(results), aggregate=self.config.aggregate)
            for item, *results in zip(items, *per_judge, strict=True)
        ]


def _matrix(units: Sequence[Sequence[float | None]]) -> np.ndarray:
    """Judges x units, NaN where a judge gave no score."""
    return np.array([[np.nan if s is None else float(s) for s in unit] for unit in units], dtype=float).T


def alpha(units: Sequence[Sequence[float | None]]) -> float:
    """Krippendorff's alpha (interval) of a panel over units: each unit is one score per judge (None: none).

    Scores are rounded to the rubric's points first (see :func:`~culturesafe_ext.judge.agreement.krippendorff_alpha`).
    NaN where alpha is undefined, since lm-eval aggregations return floats.
    """
    value = krippendorff_alpha(_matrix(units), points=True) if len(units) else None
    return float("nan") if value is None else value


def alpha_ci(
    units: Sequence[Sequence[float | None]], n_boot: int = 1000, seed: int = 1234, level: float = 0.95
) -> tuple[float, float]:
    """A seeded percentile bootstrap CI for :func:`alpha`, resampling units with replacement.

    Measured here: 1,000 draws take 3 s over 500 units and 33 s over 5,000 (the package's per-call cost).
    """
    if len(units) < 2:
        return float("nan"), float("nan")
    draws = bootstrap(lambda m: {"alpha": krippendorff_alpha(m, points=True)}, [_matrix(units)], n_boot, seed)
    ci = percentile_ci(draws["alpha"], level)
    return (float("nan"), float("nan")) if ci is None else (ci[0], ci[1])
