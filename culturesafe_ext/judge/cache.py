"""Deprecated location: this is :mod:`culturesafe_ext.llm.cache` (part of the LLM client), kept for one release."""

from __future__ import annotations

import importlib
import sys
import warnings

warnings.warn(
    f"{__name__} moved to culturesafe_ext.llm.cache; the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module("culturesafe_ext.llm.cache")
