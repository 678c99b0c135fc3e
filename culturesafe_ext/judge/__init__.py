"""One judge for the safety tasks: OpenAI-compatible HTTP, the OpenAI Batch API or a local transformers model.

Typical use (what a batch lm-eval filter does with all responses of a task)::

    judge = Judge(JudgeConfig.from_metadata(metadata))
    results = judge.score_many([JudgeItem(custom, location, query, response, "respectfulness"), ...])
    judge.last_summary  # n, n_scored, n_failed_parse, n_failed_request, n_cached, requests_sent, tokens

Several judges at once: :class:`culturesafe_ext.judge.panel.Panel` (settings ``{"judges": [...]}``).

Importing this package is cheap: aiohttp and torch load only when a backend is created.
"""

from culturesafe_ext.judge.config import JudgeConfig, JudgeNotConfiguredError
from culturesafe_ext.judge.items import DIMENSIONS, JudgeItem, JudgeResult, JudgeSummary
from culturesafe_ext.judge.judge import Completion, Judge

__all__ = [
    "Completion",
    "DIMENSIONS",
    "Judge",
    "JudgeConfig",
    "JudgeItem",
    "JudgeNotConfiguredError",
    "JudgeResult",
    "JudgeSummary",
]
