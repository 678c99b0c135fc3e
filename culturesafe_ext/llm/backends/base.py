"""The one interface every LLM backend implements: complete requests, report each as it finishes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

SCORE, GENERATE = "score", "generate"

# Why a judgement failed, counted apart in the results (a failure of none of these kinds does not exist).
UNPARSEABLE, TRUNCATED, FILTERED, REQUEST_ERROR = "unparseable", "truncated", "filtered", "request_error"
FAILURE_KINDS = (UNPARSEABLE, TRUNCATED, FILTERED, REQUEST_ERROR)


class LLMRunError(RuntimeError):
    """A fault no retry and no other request can fix (rejected key, no permission, unknown model):
    the run stops at the first one; the message says what the server said (key masked) and the fix."""


@dataclass(frozen=True)
class ScoreScale:
    """What a ``score`` request asks for, for a backend that reads label probabilities instead of generating text
    (``hf``): the start of the answer (``prefix``) and the labels that may follow it, lowest score first."""

    prefix: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class LLMRequest:
    """One call to the model: a prompt (chat messages) under a cache key; ``prompt_id`` names the prompt
    file and version it was made from (stored beside the cached reply).

    ``mode`` is ``score`` for a score on a scale (the ``hf`` backend reads the probabilities of the
    :class:`ScoreScale`'s labels; the HTTP backends generate text) or ``generate`` for free text
    (pairwise verdicts, labels, generated benchmark items): every backend then returns ``Reply.text``.
    ``max_tokens`` overrides the configured answer length; ``response_format`` (an OpenAI ``response_format``
    object, e.g. a JSON schema) is sent as it is by the HTTP backends and is part of the cache key.
    ``accept`` says whether a complete reply's text is usable (e.g. holds a final verdict); a text it
    refuses is still returned (and counted by the caller) but never cached, so a re-run asks again.
    """

    key: str
    messages: list[dict[str, str]]
    prompt_id: str
    mode: str = SCORE
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = field(default=None, hash=False)
    accept: Callable[[str], bool] | None = field(default=None, compare=False, repr=False)


@dataclass
class Reply:
    """What the backend got back: generated ``text`` or score-label ``probs`` (in the scale's order), or an ``error``.

    A reply with ``error`` set is a failure of kind ``failure`` (``truncated``: cut by the token limit,
    ``text`` keeps what came; ``filtered``: withheld by a content filter; ``request_error``) and is
    never cached, so a later run asks again.
    """

    text: str | None = None
    probs: list[float] | None = None
    mass: float | None = None
    error: str | None = None
    failure: str | None = None
    usage: dict[str, int] | None = None  # the server's token counts: prompt_tokens, completion_tokens

    @property
    def kind(self) -> str | None:
        """The failure kind, ``None`` for a complete reply."""
        return None if self.error is None else (self.failure or REQUEST_ERROR)

    def to_cache(self) -> dict[str, Any]:
        stored = {"text": self.text, "probs": self.probs, "mass": self.mass, "usage": self.usage}
        return {k: v for k, v in stored.items() if v is not None}

    @classmethod
    def from_cache(cls, stored: dict[str, Any]) -> Reply:
        return cls(
            text=stored.get("text"), probs=stored.get("probs"), mass=stored.get("mass"), usage=stored.get("usage")
        )

    @classmethod
    def from_logged(cls, result: dict[str, Any]) -> Reply:
        """The reply behind a logged result (``raw``, ``error``, ``failure`` as the judge logs them in the
        samples), so that a verdict can be re-derived from it with today's rules.

        A failure of a reply kind (truncated, filtered, request error) stays that failure; a reply that
        came back complete is re-parsed from its raw text (or its logged score probabilities)."""
        kind = result.get("failure")
        if kind in (TRUNCATED, FILTERED, REQUEST_ERROR) or (kind is None and result.get("raw") is None):
            return cls(text=result.get("raw"), error=result.get("error") or "failed", failure=kind or REQUEST_ERROR)
        raw = result.get("raw") or ""
        if raw.startswith('{"probs": '):
            try:
                logged = json.loads(raw)
                return cls(probs=logged["probs"], mass=logged.get("mass"))
            except (ValueError, KeyError, TypeError):
                pass
        return cls(text=raw)


def usage_of(body: Any) -> dict[str, int] | None:
    """Prompt and completion tokens from an OpenAI-style reply body's ``usage`` (``None`` when absent)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    counts = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
    if not all(isinstance(v, int) and v >= 0 for v in counts.values()):
        return None
    return counts  # type: ignore[return-value]


# ``on_done`` may return a future that is done once the reply is on disk (the client's cache): a backend that
# sends requests one after another in slots awaits it before it gives the request's slot to the next request,
# so a killed run never loses a reply whose successor was sent (the cost: one sqlite commit, well under 1 ms)
OnDone = Callable[[LLMRequest, Reply], "Future | None"]


class Backend(Protocol):
    """An LLM backend. ``complete`` calls ``on_done`` once per request, as soon as it is finished."""

    name: str

    def params(self) -> dict[str, Any]:
        """Sampling parameters that change the answer (they go into the cache key)."""
        ...

    def complete(self, requests: Sequence[LLMRequest], on_done: OnDone) -> None: ...

    def close(self) -> None: ...
