"""LLM backends behind one interface (:class:`~culturesafe_ext.llm.backends.base.Backend`)."""

from __future__ import annotations

from culturesafe_ext.llm.backends.base import (
    FAILURE_KINDS,
    FILTERED,
    GENERATE,
    REQUEST_ERROR,
    SCORE,
    TRUNCATED,
    UNPARSEABLE,
    Backend,
    LLMRequest,
    LLMRunError,
    Reply,
    ScoreScale,
)
from culturesafe_ext.llm.settings import LLMConfig

__all__ = [
    "FAILURE_KINDS",
    "FILTERED",
    "GENERATE",
    "REQUEST_ERROR",
    "SCORE",
    "TRUNCATED",
    "UNPARSEABLE",
    "Backend",
    "LLMRequest",
    "LLMRunError",
    "Reply",
    "ScoreScale",
    "make_backend",
]


def make_backend(config: LLMConfig, scale: ScoreScale | None = None) -> Backend:
    """The backend a config names; heavy imports (aiohttp, torch) happen only here. ``scale``: what ``score``
    requests ask for (the ``hf`` backend reads its labels' probabilities)."""
    if config.backend == "openai":
        from culturesafe_ext.llm.backends.openai_http import OpenAIBackend

        return OpenAIBackend(config)
    if config.backend == "openai-batch":
        from culturesafe_ext.llm.backends.openai_batch import OpenAIBatchBackend

        return OpenAIBatchBackend(config)
    if config.backend == "hf":
        from culturesafe_ext.llm.backends.hf_local import HFBackend

        return HFBackend(config, scale=scale)
    raise ValueError(f"the {config.role} backend {config.backend!r} makes no requests")
