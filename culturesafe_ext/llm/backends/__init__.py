"""Judge backends behind one interface (:class:`~culturesafe_ext.llm.backends.base.Backend`)."""

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
    JudgeRequest,
    JudgeRunError,
    Reply,
)
from culturesafe_ext.llm.settings import JudgeConfig

__all__ = [
    "FAILURE_KINDS",
    "FILTERED",
    "GENERATE",
    "REQUEST_ERROR",
    "SCORE",
    "TRUNCATED",
    "UNPARSEABLE",
    "Backend",
    "JudgeRequest",
    "JudgeRunError",
    "Reply",
    "make_backend",
]


def make_backend(config: JudgeConfig) -> Backend:
    """The backend a config names; heavy imports (aiohttp, torch) happen only here."""
    if config.backend == "openai":
        from culturesafe_ext.llm.backends.openai_http import OpenAIBackend

        return OpenAIBackend(config)
    if config.backend == "openai-batch":
        from culturesafe_ext.llm.backends.openai_batch import OpenAIBatchBackend

        return OpenAIBatchBackend(config)
    if config.backend == "hf":
        from culturesafe_ext.llm.backends.hf_local import HFBackend

        return HFBackend(config)
    raise ValueError(f"the judge backend {config.backend!r} makes no requests")
