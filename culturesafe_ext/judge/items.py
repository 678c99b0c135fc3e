"""What goes into the judge and what comes out: one result per item, failures kept in view."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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

    ``score`` is ``None`` exactly when the item failed: ``error`` then says whether the request failed
    (``raw`` is ``None``) or the judge's output could not be parsed (``raw`` holds it).
    """

    dimension: str
    score: float | None = None
    argmax: int | None = None
    raw: str | None = None
    parse_ok: bool = False
    error: str | None = None
    from_cache: bool = False
    key: str | None = None

    @property
    def failed_request(self) -> bool:
        return self.error is not None and self.raw is None and not self.skipped

    @property
    def failed_parse(self) -> bool:
        return self.raw is not None and not self.parse_ok

    @property
    def skipped(self) -> bool:
        return self.error == SKIPPED

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SKIPPED = "not judged: the judge backend is 'none'"


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

    @classmethod
    def of(cls, results: Sequence[JudgeResult], requests_sent: int = 0, seconds: float = 0.0) -> JudgeSummary:
        return cls(
            n=len(results),
            n_scored=sum(r.score is not None for r in results),
            n_failed_parse=sum(r.failed_parse for r in results),
            n_failed_request=sum(r.failed_request for r in results),
            n_skipped=sum(r.skipped for r in results),
            n_cached=sum(r.from_cache for r in results),
            requests_sent=requests_sent,
            seconds=seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
