"""The one interface every judge backend implements: complete requests, report each as it finishes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

SCORE, GENERATE = "score", "generate"


@dataclass(frozen=True)
class JudgeRequest:
    """One call to the model behind the judge: a prompt (chat messages) under a cache key.

    ``mode`` is ``score`` for a 1..10 judgement (the ``hf`` backend reads score-token probabilities)
    or ``generate`` for free text (pairwise verdicts, labels, generated benchmark items): every
    backend then returns ``Reply.text``. ``max_tokens`` overrides the configured answer length.
    """

    key: str
    messages: list[dict[str, str]]
    rubric: str
    mode: str = SCORE
    max_tokens: int | None = None


@dataclass
class Reply:
    """What the backend got back: generated ``text`` or score-token ``probs`` (1..10), or an ``error``."""

    text: str | None = None
    probs: list[float] | None = None
    mass: float | None = None
    error: str | None = None
    usage: dict[str, int] | None = None  # the server's token counts: prompt_tokens, completion_tokens

    def to_cache(self) -> dict[str, Any]:
        stored = {"text": self.text, "probs": self.probs, "mass": self.mass, "usage": self.usage}
        return {k: v for k, v in stored.items() if v is not None}

    @classmethod
    def from_cache(cls, stored: dict[str, Any]) -> Reply:
        return cls(
            text=stored.get("text"), probs=stored.get("probs"), mass=stored.get("mass"), usage=stored.get("usage")
        )


def usage_of(body: Any) -> dict[str, int] | None:
    """Prompt and completion tokens from an OpenAI-style reply body's ``usage`` (``None`` when absent)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    counts = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
    if not all(isinstance(v, int) and v >= 0 for v in counts.values()):
        return None
    return counts  # type: ignore[return-value]


OnDone = Callable[[JudgeRequest, Reply], None]


class Backend(Protocol):
    """A judge backend. ``complete`` calls ``on_done`` once per request, as soon as it is finished."""

    name: str

    def params(self) -> dict[str, Any]:
        """Sampling parameters that change the answer (they go into the cache key)."""
        ...

    def complete(self, requests: Sequence[JudgeRequest], on_done: OnDone) -> None: ...

    def close(self) -> None: ...
