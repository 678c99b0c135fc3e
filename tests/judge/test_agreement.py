"""One agreement module for panels and calibration: alpha as the package computes it, bootstraps over units."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from culturesafe_ext.judge import agreement, panel


def test_alpha_is_the_package_s_and_undefined_cases_are_none() -> None:
    matrix = np.array([[1, 2, 3, 4, np.nan, 7], [1, 3, 3, 5, 6, np.nan], [2, 2, np.nan, 4, 6, 8]], dtype=float)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    assert agreement.krippendorff_alpha(matrix) == pytest.approx(expected, abs=1e-12)
    assert agreement.krippendorff_alpha([[1, 5, np.nan], [2, np.nan, 3]]) is None  # one unit scored twice
    assert agreement.krippendorff_alpha([[4, 4, 4], [4, 4, 4]]) is None  # no variation: 0/0
    unrounded = np.array([[6.49, 2.2, 8.51], [6.2, 2.4, 8.7]])
    rounded = krippendorff.alpha(reliability_data=np.floor(unrounded + 0.5), level_of_measurement="interval")
    assert agreement.krippendorff_alpha(unrounded, points=True) == pytest.approx(rounded, abs=1e-12)
    assert panel.alpha([[6.49, 6.2], [2.2, 2.4], [8.51, 8.7]]) == pytest.approx(rounded, abs=1e-12)
    assert np.isnan(panel.alpha([[3.0, None], [5.0, 5.0]]))


def test_bootstrap_draws_units_from_the_last_axis_of_a_matrix() -> None:
    """A scorers x units matrix is resampled over its units (calibration's inter-rater CI once drew only from
    the first len(raters) units)."""
    units = 50
    matrix = np.vstack([np.arange(units), np.arange(units), np.arange(units)])
    draws = agreement.bootstrap(lambda m: {"max": float(m[0].max()), "cols": m.shape[1]}, [matrix], 200, seed=0)
    assert set(draws["cols"]) == {units} and max(draws["max"]) >= units - 3
    scores = list(range(units))
    same = agreement.bootstrap(lambda a, b: {"diff": float(np.abs(a - b).max())}, [scores, scores], 50, seed=0)
    assert set(same["diff"]) == {0.0}  # the same units drawn in every column


def test_percentile_ci_skips_undefined_draws_and_needs_enough_of_them() -> None:
    assert agreement.percentile_ci([None, float("nan"), 1.0, 3.0]) == [1.05, 2.95]
    assert agreement.percentile_ci([1.0, 2.0], min_draws=10) is None
    assert agreement.percentile_ci([None]) is None
