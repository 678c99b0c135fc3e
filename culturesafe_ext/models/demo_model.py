"""Deprecated location: this is :mod:`culturesafe_ext.demo_model` (models/ holds lm-eval model classes only)."""

from __future__ import annotations

import importlib
import sys
import warnings

warnings.warn(
    f"{__name__} moved to culturesafe_ext.demo_model; the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module("culturesafe_ext.demo_model")
