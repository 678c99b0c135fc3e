"""The judge as one batch step: every response of a task is scored in one call, concurrently.

:meth:`Judge.score_many` builds one prompt per (item, dimension) -- or per item when both dimensions
share a call --, answers what it can from the cache, sends only the rest (each distinct prompt once),
writes every reply to the cache as it arrives, and returns one :class:`JudgeResult` per item in input
order. Failures stay results: a failed request or an unparseable answer is counted, never dropped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence

from culturesafe_ext.judge.items import DIMENSIONS, SKIPPED, JudgeItem, JudgeResult, JudgeSummary
from culturesafe_ext.judge.rubric import COMBINED, load_rubric
from culturesafe_ext.judge.settings import JudgeConfig
from culturesafe_ext.llm.backends import UNPARSEABLE, Backend, LLMRequest, Reply, ScoreScale
from culturesafe_ext.llm.client import Completion, LLMClient
from culturesafe_ext.parsing import check_score

log = logging.getLogger("culturesafe.judge")
__all__ = ["Completion", "Judge", "interpret"]
LOW, HIGH = 1, 10
# what every rubric asks the judge to answer: {"score": n}; a backend that reads label probabilities (hf) reads these
SCALE = ScoreScale(prefix='{"score":', labels=tuple(str(s) for s in range(LOW, HIGH + 1)))


class Judge:
    """Scores responses with the configured rubric version; every request goes through its :class:`LLMClient`."""

    def __init__(self, config: JudgeConfig, backend: Backend | None = None) -> None:
        self.config = config
        self.client = LLMClient(config, backend, scale=SCALE)
        self.last_summary: JudgeSummary | None = None

    def check_cache(self) -> None:
        """Fail now, naming the file, when the judge's cache cannot be used (before anything is generated)."""
        self.client.check_cache()

    def requests_for(self, items: Sequence[JudgeItem]) -> list[LLMRequest]:
        """The request that judges each item (items that share a prompt share a request)."""
        requests = []
        for item in items:
            rubric = load_rubric(
                COMBINED if self.config.both_dimensions_in_one_call else item.dimension,
                self.config.rubric_version,
            )
            messages = rubric.messages(item.custom, item.location, item.query, item.response)
            keys = list(DIMENSIONS) if self.config.both_dimensions_in_one_call else ["score"]
            requests.append(self.client.request(messages, rubric.id, accept=_holds_scores(keys)))
        return requests

    def score_many(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """One result per item, in input order; see :attr:`last_summary` for the counts."""
        started = time.monotonic()
        if not items:
            self.last_summary = JudgeSummary.of([])
            return []
        if self.config.backend == "none":
            results = [JudgeResult(dimension=i.dimension, error=SKIPPED) for i in items]
            self.last_summary = JudgeSummary.of(results)
            return results
        requests = self.requests_for(items)
        done = self.client.complete(requests)
        combined = self.config.both_dimensions_in_one_call
        results = [
            interpret(item, done.replies[request.key], combined, from_cache=request.key in done.cached, key=request.key)
            for item, request in zip(items, requests, strict=True)
        ]
        seen: set[str] = set()
        for result in results:  # a reply shared by several items (one prompt) is counted once
            if result.key in seen:
                result.usage = None
            seen.add(result.key or "")
        self.last_summary = JudgeSummary.of(
            results, done.sent, time.monotonic() - started, fatal=done.fatal, cache_problem=done.cache_problem
        )
        self._log(self.last_summary)
        return results

    def score(self, item: JudgeItem) -> JudgeResult:
        return self.score_many([item])[0]

    def _log(self, summary: JudgeSummary) -> None:
        failed = summary.n_failed_parse + summary.n_failed_request
        level = logging.WARNING if failed else logging.INFO
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in summary.failures.items())
        log.log(
            level,
            "judge: %d items, %d scored, failures: %s; %d from cache, %d sent, %.1fs, %d+%d tokens (%d+%d new)",
            summary.n,
            summary.n_scored,
            kinds,
            summary.n_cached,
            summary.requests_sent,
            summary.seconds,
            summary.prompt_tokens,
            summary.completion_tokens,
            summary.new_prompt_tokens,
            summary.new_completion_tokens,
        )


def interpret(
    item: JudgeItem, reply: Reply, combined: bool = False, from_cache: bool = False, key: str | None = None
) -> JudgeResult:
    """Turn a backend reply into the item's result (parse text, or average the score probabilities).

    THE function that makes a verdict of a reply (the leaderboard validator re-parses logged raw replies
    with it): a failed reply keeps its kind (truncated, filtered, request error) and whatever text came;
    a complete reply counts only when it holds one final score (:func:`culturesafe_ext.parsing.check_score`).
    """
    result = JudgeResult(dimension=item.dimension, from_cache=from_cache, key=key, usage=reply.usage)
    if reply.error is not None:
        result.error = reply.error
        result.raw = reply.text
        result.failure = reply.kind
        return result
    if reply.probs is not None:
        result.raw = json.dumps({"probs": [round(p, 6) for p in reply.probs], "mass": reply.mass})
        result.score = sum(p * s for s, p in enumerate(reply.probs, start=LOW))
        result.argmax = max(range(len(reply.probs)), key=reply.probs.__getitem__) + LOW
        result.parse_ok = True
        return result
    result.raw = reply.text if reply.text is not None else ""
    key_name = item.dimension if combined else "score"
    verdict = check_score(result.raw, LOW, HIGH, key=key_name)
    result.score = verdict.value  # type: ignore[assignment]
    result.parse_ok = verdict.ok
    if not result.parse_ok:
        result.error = f"unparseable judge output: {verdict.problem}"
        result.failure = UNPARSEABLE
    return result


def _holds_scores(keys: list[str]) -> Callable[[str], bool]:
    """Whether a reply holds a final score for every key (a reply that does not is never cached)."""
    return lambda text: all(check_score(text, LOW, HIGH, key=key).ok for key in keys)
