"""What goes into the judge and what comes out: one result per item, failures kept in view."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from culturesafe_ext.llm.backends.base import FAILURE_KINDS, REQUEST_ERROR, UNPARSEABLE

DIMENSIONS = ("respectfulness", "awareness")


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge on one dimension, with what the paper's judge sees."""

    custom: str
    location: str
    query: str
    response: str
    dimension: str = "respectfulness"

    def __post_init__(self) -> None:
        if self.dimension not in DIMENSIONS:
            raise ValueError(f"judge dimension {self.dimension!r} is not one of {DIMENSIONS}")


@dataclass
class JudgeResult:
    """The judge's verdict on one item.

    ``score`` is ``None`` exactly when the item failed: ``failure`` then names the kind
    (``unparseable``, ``truncated``, ``filtered`` or ``request_error``), ``error`` says what happened and
    ``raw`` keeps whatever the judge sent (also for a truncated reply).
    """

    dimension: str
    score: float | None = None
    argmax: int | None = None
    raw: str | None = None
    parse_ok: bool = False
    error: str | None = None
    from_cache: bool = False
    key: str | None = None
    failure: str | None = None
    usage: dict[str, int] | None = None  # the reply's tokens; on the first item of a shared request only
    usage_unknown: bool = False  # the server sent a reply without token counts: its tokens and cost are unknown

    @property
    def failed_request(self) -> bool:
        """The judge gave no usable reply (request error, truncated or filtered)."""
        return self.failure is not None and self.failure != UNPARSEABLE

    @property
    def failed_parse(self) -> bool:
        return self.failure == UNPARSEABLE

    @property
    def skipped(self) -> bool:
        return self.error == SKIPPED

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SKIPPED = "not judged: the judge backend is 'none'"
WITHHELD = "not judged: the model gave no answer (content null or empty, e.g. withheld by a content filter)"


def withheld(response: object) -> bool:
    """Whether the evaluated model's answer was withheld: lm-eval logs a served model's ``content: null`` as
    ``None`` and a reply it cannot parse (a content filter's) as ``""``. Such an answer is counted
    (``answers_withheld``), never judged: a judge would score the empty text as if the model had said it."""
    return response is None or (isinstance(response, str) and not response.strip())


@dataclass(frozen=True)
class JudgeSummary:
    """Counts over one batch: every item is scored, a failed request, a failed parse or skipped."""

    n: int
    n_scored: int
    n_failed_parse: int
    n_failed_request: int
    n_skipped: int
    n_cached: int
    requests_sent: int = 0
    seconds: float = 0.0
    failures: dict[str, int] = dataclasses.field(default_factory=dict)  # per failure kind, every kind listed
    fatal: str | None = None  # a run-level error that stopped the judge (the rest are counted request errors)
    cache_problem: str | None = None  # replies that could not be written to the cache (they were still used)
    prompt_tokens: int = 0  # over every reply used, cached ones included (what the judging cost) ...
    completion_tokens: int = 0
    new_prompt_tokens: int = 0  # ... and over the replies this call paid for
    new_completion_tokens: int = 0

    @classmethod
    def of(
        cls,
        results: Sequence[JudgeResult],
        requests_sent: int = 0,
        seconds: float = 0.0,
        fatal: str | None = None,
        cache_problem: str | None = None,
    ) -> JudgeSummary:
        tokens = usage_totals(results)
        return cls(
            n=len(results),
            n_scored=sum(r.score is not None for r in results),
            n_failed_parse=sum(r.failed_parse for r in results),
            n_failed_request=sum(r.failed_request for r in results),
            n_skipped=sum(r.skipped for r in results),
            n_cached=sum(r.from_cache for r in results),
            requests_sent=requests_sent,
            seconds=seconds,
            failures=failure_counts(r.failure for r in results),
            fatal=fatal,
            cache_problem=cache_problem,
            **tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def failure_counts(kinds: Iterable[str | None]) -> dict[str, int]:
    """How many failures of each kind (every kind present, zeros included)."""
    counts = dict.fromkeys(FAILURE_KINDS, 0)
    for kind in kinds:
        if kind is not None:
            counts[kind if kind in counts else REQUEST_ERROR] += 1
    return counts


def usage_totals(results: Sequence[JudgeResult | dict[str, Any]]) -> dict[str, int]:
    """Prompt and completion tokens over results (objects or their dicts), in total and not from cache."""
    out = dict.fromkeys(("prompt_tokens", "completion_tokens", "new_prompt_tokens", "new_completion_tokens"), 0)
    for result in results:
        usage = result.get("usage") if isinstance(result, dict) else result.usage
        cached = result.get("from_cache") if isinstance(result, dict) else result.from_cache
        for name in ("prompt_tokens", "completion_tokens"):
            n = int((usage or {}).get(name) or 0)
            out[name] += n
            if not cached:
                out["new_" + name] += n
    return out
