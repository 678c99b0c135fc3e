"""How far scorers agree: Krippendorff's alpha (interval level) and a seeded percentile bootstrap over units.

One place for both, used where judges are compared with judges (a panel, :mod:`culturesafe_ext.judge.panel`)
and with people (the calibration, :mod:`culturesafe_ext.analysis.calibrate`). Alpha comes from the
``krippendorff`` package; a scores matrix is scorers x units, NaN where a scorer gave no score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MIN_PAIRED_UNITS = 2  # below this alpha says nothing (one unit gives 0 whatever the scores)


def half_up(values: Any) -> np.ndarray:
    """Scores rounded half up to the rubric's whole points (NaN stays NaN); ``round`` would round 6.5 to 6."""
    return np.floor(np.asarray(values, dtype=float) + 0.5)


def krippendorff_alpha(matrix: Any, *, points: bool = False) -> float | None:
    """Alpha of a scorers x units matrix; None where it is undefined: fewer than two units scored twice, or
    no variation at all among their scores.

    ``points`` rounds the scores half up first. A panel needs it: the ``hf`` judge's probability-weighted
    scores would otherwise make every value distinct, and the package's coincidence matrices grow with the
    square of the number of distinct values (5,000 such scores asked it for 3.6 TiB).
    """
    import krippendorff

    data = np.asarray(matrix, dtype=float)
    if points:
        data = half_up(data)
    if data.ndim != 2 or data.size == 0:
        return None
    paired = np.sum(~np.isnan(data), axis=0) >= 2
    values = data[:, paired][~np.isnan(data[:, paired])]
    if paired.sum() < MIN_PAIRED_UNITS or len(np.unique(values)) < 2:
        return None
    with np.errstate(all="ignore"):
        value = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    return float(value) if np.isfinite(value) else None


def bootstrap(
    fn: Callable[..., dict[str, float | None]], columns: Sequence[Any], n_resamples: int, seed: int
) -> dict[str, list[float | None]]:
    """``fn`` over ``n_resamples`` seeded resamples (with replacement) of the units: the LAST axis of every
    column (a list of scores, or a scorers x units matrix), the same units drawn in every column."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(c, dtype=float) for c in columns]
    n = arrays[0].shape[-1]
    out: dict[str, list[float | None]] = defaultdict(list)
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        for name, value in fn(*[a[..., idx] for a in arrays]).items():
            out[name].append(value)
    return out


def percentile_ci(draws: Sequence[float | None], level: float = 0.95, min_draws: int = 1) -> list[float] | None:
    """The percentile interval of the defined draws; None with fewer than ``min_draws`` of them."""
    finite = np.array([d for d in draws if d is not None and np.isfinite(d)], dtype=float)
    if len(finite) < max(min_draws, 1):
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [float(low), float(high)]
