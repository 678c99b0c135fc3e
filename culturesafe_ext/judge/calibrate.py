"""Deprecated location: this is :mod:`culturesafe_ext.analysis.calibrate` (it reads runs, so it lives in analysis/)."""

from __future__ import annotations

import importlib
import sys
import warnings

warnings.warn(
    f"{__name__} moved to culturesafe_ext.analysis.calibrate; the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module("culturesafe_ext.analysis.calibrate")
