"""One judge for the safety tasks: OpenAI-compatible HTTP, the OpenAI Batch API or a local transformers model.

Typical use (what a batch lm-eval filter does with all responses of a task)::

    judge = Judge(JudgeConfig.from_metadata(metadata))
    results = judge.score_many([JudgeItem(custom, location, query, response, "respectfulness"), ...])
    judge.last_summary  # n, n_scored, failures per kind, n_cached, requests_sent, fatal, cache_problem, tokens

A result counts only when the reply is complete and final (:func:`culturesafe_ext.parsing.check_score`);
every other outcome is a failure of a named kind (unparseable, truncated, filtered, request_error), and
401/403/404 stop the run (``last_summary.fatal``). Several judges at once:
:class:`culturesafe_ext.judge.panel.Panel` (settings ``{"judges": [...]}``).

Importing this package is cheap: aiohttp and torch load only when a backend is created.
"""

from culturesafe_ext.judge.items import DIMENSIONS, JudgeItem, JudgeResult, JudgeSummary
from culturesafe_ext.judge.judge import Judge
from culturesafe_ext.judge.settings import JudgeConfig, JudgeNotConfiguredError
from culturesafe_ext.llm.client import Completion

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
