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
from dataclasses import dataclass, field
from typing import Any

from culturesafe_ext.judge.backends import (
    REQUEST_ERROR,
    SCORE,
    UNPARSEABLE,
    Backend,
    JudgeRequest,
    JudgeRunError,
    Reply,
    make_backend,
)
from culturesafe_ext.judge.cache import JudgeCache, cache_key
from culturesafe_ext.judge.config import JudgeConfig
from culturesafe_ext.judge.items import DIMENSIONS, SKIPPED, JudgeItem, JudgeResult, JudgeSummary
from culturesafe_ext.judge.rubric import COMBINED, load_rubric
from culturesafe_ext.parsing import check_score

log = logging.getLogger("culturesafe.judge")
LOW, HIGH = 1, 10


@dataclass
class Completion:
    """Replies by cache key, which of them came from the cache, and how many requests were sent.

    ``fatal``: the run-level error that stopped the backend (every request it left unanswered has a
    reply with that error); ``cache_problem``: replies that were used but could not be cached.
    """

    replies: dict[str, Reply]
    cached: set[str] = field(default_factory=set)
    sent: int = 0
    fatal: str | None = None
    cache_problem: str | None = None


class Judge:
    """Scores responses with the configured backend, cache and rubric version."""

    def __init__(self, config: JudgeConfig, backend: Backend | None = None) -> None:
        self.config = config
        self._backend = backend
        self.last_summary: JudgeSummary | None = None

    @property
    def backend(self) -> Backend:
        """Created on first use, so building a Judge to validate settings loads no model."""
        if self._backend is None:
            self._backend = make_backend(self.config)
        return self._backend

    def request(
        self,
        messages: list[dict[str, str]],
        rubric_id: str,
        mode: str = SCORE,
        max_tokens: int | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> JudgeRequest:
        """A request under its cache key: everything that decides the answer is in the key.

        ``accept``: whether a reply's text is usable; an unusable one is not cached (never cache a failure)."""
        params = dict(self.backend.params())
        if mode != SCORE:
            params.update(mode=mode, max_tokens=max_tokens or self.config.max_tokens)
        elif max_tokens:
            params.update(max_tokens=max_tokens)
        key = cache_key(self.config.backend, self.config.model, rubric_id, messages, params)
        return JudgeRequest(
            key=key, messages=messages, rubric=rubric_id, mode=mode, max_tokens=max_tokens, accept=accept
        )

    def requests_for(self, items: Sequence[JudgeItem]) -> list[JudgeRequest]:
        """The request that judges each item (items that share a prompt share a request)."""
        requests = []
        for item in items:
            rubric = load_rubric(
                COMBINED if self.config.both_dimensions_in_one_call else item.dimension,
                self.config.rubric_version,
            )
            messages = rubric.messages(item.custom, item.location, item.query, item.response)
            keys = list(DIMENSIONS) if self.config.both_dimensions_in_one_call else ["score"]
            requests.append(self.request(messages, rubric.id, accept=_holds_scores(keys)))
        return requests

    def complete(self, requests: Sequence[JudgeRequest]) -> Completion:
        """Answer every request: from the cache where it can, each distinct prompt sent once otherwise.

        The one way any part of culturesafe talks to an LLM (judging, pairwise verdicts, generating
        benchmark items): every reply is cached on disk as it arrives, so a killed run resumes.
        A failed request comes back as a ``Reply`` with ``error`` set, never as a missing key.
        """
        unique = {r.key: r for r in requests}
        cache = JudgeCache(self.config.resolved_cache_path()) if self.config.cache else None
        fatal = None
        try:
            cached = cache.get_many(unique) if cache is not None else {}
            replies = {key: Reply.from_cache(stored) for key, stored in cached.items()}
            to_send = [r for key, r in unique.items() if key not in cached]
            fatal = self._send(to_send, replies, cache)
        finally:
            if cache is not None:
                cache.close()
        problem = cache.problem if cache is not None else None
        if problem:
            log.warning("judge: %s", problem)
        return Completion(replies=replies, cached=set(cached), sent=len(to_send), fatal=fatal, cache_problem=problem)

    def check_cache(self) -> None:
        """Fail now, naming the file, when the cache cannot be used (before anything is generated)."""
        if self.config.cache:
            JudgeCache.check(self.config.resolved_cache_path())

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
        done = self.complete(requests)
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

    def _send(self, requests: list[JudgeRequest], replies: dict[str, Reply], cache: JudgeCache | None) -> str | None:
        """Send ``requests``; returns the run-level error that stopped the backend, if one did."""
        if not requests:
            return None
        bar = _progress(
            total=len(requests),
            desc=f"judge ({self.config.backend})",
            unit="req",
            disable=not self.config.progress,
            mininterval=0.5,
        )

        started, tokens = time.monotonic(), [0]

        def on_done(request: JudgeRequest, reply: Reply) -> None:
            replies[request.key] = reply
            usable = reply.text is None or request.accept is None or request.accept(reply.text)
            if cache is not None and reply.error is None and usable:
                cache.put(request.key, reply.to_cache(), self.config.backend, self.config.model, request.rubric)
            if reply.usage:
                tokens[0] += reply.usage["prompt_tokens"] + reply.usage["completion_tokens"]
                bar.set_postfix_str(f"{tokens[0] / max(time.monotonic() - started, 1e-3):.0f} tok/s", refresh=False)
            bar.update(1)

        fatal = None
        try:
            self.backend.complete(requests, on_done)
        except JudgeRunError as err:  # stop at the first such error; what arrived before it is kept
            fatal = str(err)
            log.error("judge: %s", fatal)
        finally:
            bar.close()
        missing = f"not sent: {fatal}" if fatal else "no reply from the backend"
        for request in requests:  # a backend that skipped one must not lose it silently
            replies.setdefault(request.key, Reply(error=missing, failure=REQUEST_ERROR))
        return fatal

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


def _progress(**kwargs: object) -> Any:
    """A tqdm bar, or a no-op when disabled (tqdm's import is not free)."""
    if kwargs.get("disable"):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass
