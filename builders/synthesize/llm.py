"""Every use of :mod:`culturesafe_ext.llm` (and of the judge built on it) by the synthesis pipeline, in one module.

Why one module: the pipeline's other modules import the writer's client and the judge from here, so the
settings they are built from are read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
from culturesafe_ext.llm import LLMClient, LLMConfig
from culturesafe_ext.llm.backends.base import LLMRequest, Reply
from culturesafe_ext.llm.prompts import Template, load_template
from culturesafe_ext.llm.settings import parse_settings

__all__ = [
    "LLMClient",
    "LLMConfig",
    "LLMRequest",
    "Reply",
    "Template",
    "load_prompt",
    "make_client",
    "make_judge",
    "respect_scores",
]

BACKENDS = ("openai", "openai-batch", "hf")


def make_client(spec: str, overrides: Mapping[str, Any]) -> LLMClient:
    """The generator client from ``--llm`` (``openai:MODEL``, ``hf:FOLDER`` or a JSON object) and flags."""
    values = parse_settings(spec, "--llm")
    if not isinstance(values, Mapping) or values.get("backend") not in BACKENDS or not values.get("model"):
        raise ValueError(f"--llm {spec.strip()!r}: expected openai:MODEL, openai-batch:MODEL, hf:MODEL or JSON")
    return LLMClient(LLMConfig.from_spec(values, "--llm", overrides=overrides))


def load_prompt(name: str, version: str = "v1") -> Template:
    """``prompts/<name>.<version>.txt`` of this package; its id ``syn-<name>.<version>`` keys the cache."""
    return load_template(name, version, package=__package__, folder="prompts", prefix="syn-")


def make_judge(spec: str, overrides: Mapping[str, Any]) -> Judge:
    """The project's judge from ``--judge`` (same forms as ``--llm``), for rejection sampling of answers.

    A :class:`JudgeConfig` (rubric version and all), from the flag alone: no ``CULTURESAFE_JUDGE_*``
    variable decides which judge filters training data."""
    return Judge(JudgeConfig.from_spec(spec, "--judge", overrides=overrides, env={}))


def respect_scores(judge: Judge, rows: list[dict]) -> tuple[list[float | None], dict]:
    """The judge's respectfulness score of each row's answer (``None`` on a counted failure) and its summary.

    What the judge sees: the passage's evidence as the custom, the culture as the location, the rendered
    prompt as the query and the answer as the response (the safety task's own judging, on training data)."""
    items = [
        JudgeItem(r["answer_evidence"], r["culture_name"], r["prompt"], r["completion"].strip(), "respectfulness")
        for r in rows
    ]
    results = judge.score_many(items)
    summary = judge.last_summary
    if summary is not None and summary.fatal:
        raise ValueError(f"--judge: {summary.fatal}")
    sent = summary.requests_sent if summary is not None else 0
    return [r.score for r in results], {"failures": _failures(results), "sent": sent}


def _failures(results: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        if r.score is None:
            out[r.failure or "skipped"] = out.get(r.failure or "skipped", 0) + 1
    return out
