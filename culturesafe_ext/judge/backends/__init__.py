"""Deprecated location: the backends are part of the LLM client, :mod:`culturesafe_ext.llm.backends`.

Kept for one release: ``culturesafe_ext.judge.backends[.base|.openai_http|.openai_batch|.hf_local]`` are the
very modules of the new location (no second copy).
"""

from __future__ import annotations

import importlib
import sys
import warnings

_NEW = "culturesafe_ext.llm.backends"
for _sub in ("base", "openai_http", "openai_batch", "hf_local"):
    sys.modules[f"{__name__}.{_sub}"] = importlib.import_module(f"{_NEW}.{_sub}")
warnings.warn(
    f"{__name__} moved to {_NEW}; the old path goes away in the next release", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = importlib.import_module(_NEW)
