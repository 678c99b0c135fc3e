"""Statistics for the report: correlations with p-values (scipy) and bootstrap 95% intervals.

Every result carries ``n`` (the number of units behind it), so a figure is never shown without its count.
Intervals come from ``scipy.stats.bootstrap`` (percentile method, paired resampling for correlations and
differences, fixed seed so a report is reproducible).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

N_RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0


def _ci(data: tuple[np.ndarray, ...], statistic, paired: bool, n_resamples: int, seed: int) -> list[float] | None:
    """Percentile bootstrap interval, None when it cannot be computed (too few units, constant data)."""
    from scipy.stats import bootstrap

    if len(data[0]) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(
            data,
            statistic,
            paired=paired,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=CONFIDENCE,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return None if math.isnan(low) or math.isnan(high) else [low, high]


def _pearson_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson's r along ``axis`` (vectorised over bootstrap resamples); nan where a side is constant."""
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=axis) / np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))


def _spearman_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import rankdata

    return _pearson_along(rankdata(x, axis=axis), rankdata(y, axis=axis), axis=axis)


def correlation(
    x: Sequence[float], y: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """Spearman and Pearson with scipy's p-values and paired bootstrap 95% CIs; ``n`` units.

    With fewer than 3 units or a constant side the coefficient is undefined: None, with the reason.
    """
    from scipy.stats import pearsonr, spearmanr

    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out: dict[str, Any] = {"n": int(len(xa))}
    if len(xa) < 3:
        out["undefined"] = f"needs at least 3 paired units, has {len(xa)}"
        return out
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        out["undefined"] = "one side is constant across units"
        return out
    for name, scipy_fn, along in (("spearman", spearmanr, _spearman_along), ("pearson", pearsonr, _pearson_along)):
        res = scipy_fn(xa, ya)
        out[name] = {
            "r": float(res.statistic),
            "p": float(res.pvalue),
            "ci95": _ci((xa, ya), along, paired=True, n_resamples=n_resamples, seed=seed),
        }
    return out


def mean_ci(values: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """Mean of the units with a bootstrap 95% CI."""
    va = np.asarray(values, dtype=float)
    if len(va) == 0:
        return {"n": 0, "mean": None, "ci95": None}
    ci = None if np.ptp(va) == 0 and len(va) >= 3 else _ci((va,), np.mean, False, n_resamples, seed)
    if ci is None and len(va) >= 3:
        ci = [float(va.mean()), float(va.mean())]  # constant data: the interval is the point
    return {"n": int(len(va)), "mean": float(va.mean()), "ci95": ci}


def paired_difference(
    after: Sequence[float], before: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """Mean of ``after - before`` over paired units, with a paired bootstrap 95% CI."""
    return mean_ci(np.asarray(after, dtype=float) - np.asarray(before, dtype=float), n_resamples, seed)


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    """The paper's joint "F1" of two rates in [0, 1]; 0 when either is 0, None when either is missing."""
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def rescale_score(score: float | None, low: float = 1.0, high: float = 10.0) -> float | None:
    """A 1..10 judge score onto 0..1: (x - 1) / 9."""
    return None if score is None else (score - low) / (high - low)


def fisher_2x2(table: list[list[int]]) -> dict[str, Any]:
    """Fisher's exact test on a 2x2 table (odds ratio, two-sided p)."""
    from scipy.stats import fisher_exact

    if sum(map(sum, table)) == 0:
        return {"odds_ratio": None, "p": None}
    res = fisher_exact(table)
    odds = float(res.statistic)
    return {"odds_ratio": None if math.isnan(odds) else odds, "p": float(res.pvalue)}
