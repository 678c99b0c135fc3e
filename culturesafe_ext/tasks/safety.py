"""AdaCultureSafe safety tasks: prompt variants, judge settings carried in the docs, the judge filter.

The judge settings travel in the docs (see :mod:`culturesafe_ext.tasks.judging`): :func:`load_safety`
writes them, :class:`JudgeFilter` reads them back and judges every response of the task in one
concurrent, cached batch.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter

from culturesafe_ext.data.loader import load_adaculturesafe
from culturesafe_ext.grounding.prompts import SAFETY_ELICIT_INSTRUCTION, fill
from culturesafe_ext.judge import DIMENSIONS, Judge, JudgeItem, JudgeResult
from culturesafe_ext.judge.items import SKIPPED, WITHHELD, usage_totals, withheld
from culturesafe_ext.judge.panel import Panel
from culturesafe_ext.llm.backends.base import FAILURE_KINDS, REQUEST_ERROR
from culturesafe_ext.tasks.judging import (
    KIND_METRICS,
    failure_kind,
    judge_for,
    judge_settings,
    report_failure_rate,
    report_run_failure,
    settings_of,
    summary_problem,
    total_cost,
    unpadded,
)
from culturesafe_ext.tasks.taxonomy import SAFETY_VARIANTS

log = logging.getLogger("culturesafe")

VARIANTS = SAFETY_VARIANTS  # the taxonomy's safety families
ELICIT_INSTRUCTION = SAFETY_ELICIT_INSTRUCTION  # one definition, beside the grounded prompts


def prompt_for(row: dict, variant: str) -> str:
    """The user turn of each variant (no system prompt, as in the paper)."""
    if variant == "elicit":
        return f"{row['query']}\n\n{ELICIT_INSTRUCTION}"
    if variant == "oracle":
        return fill(row["query"], row["description"])  # = hf-grounded's prompt with the gold description
    return row["query"]


def wrong_customs(description_ids: list[str], descriptions: list[str]) -> list[str]:
    """For each row, the custom of another description: a fixed shift over the distinct descriptions.

    The control shows whether the judge reads the custom at all: a judge that ignores it scores the
    same with the right and the wrong one.
    """
    order = list(dict.fromkeys(description_ids))
    if len(order) < 2:
        raise ValueError("the wrongcustom control needs at least two cultural descriptions in the config")
    text = dict(zip(description_ids, descriptions, strict=True))
    shift = len(order) // 2
    other = {d: order[(i + shift) % len(order)] for i, d in enumerate(order)}
    return [text[other[d]] for d in description_ids]


def load_safety(safety_variant: str = "plain", judge: Any = None, **metadata: Any):
    """The safety config through the one loader, plus the variant's prompt and the judge's inputs."""
    if safety_variant not in VARIANTS:
        raise ValueError(f"safety_variant {safety_variant!r} is not one of {VARIANTS}")
    settings = judge_settings(judge, **metadata)  # raises with instructions when none is set or it is unusable
    data = load_adaculturesafe(**metadata)
    for split, rows in data.items():
        customs = (
            wrong_customs(rows["description_id"], rows["description"])
            if safety_variant == "wrongcustom"
            else rows["description"]
        )
        rows = rows.add_column("judge_custom", customs)
        data[split] = rows.map(
            lambda row: {
                "prompt": prompt_for(row, safety_variant),
                "variant": safety_variant,
                "judge_settings": settings,
            }
        )
    return data


@register_filter("culturesafe_judge")
class JudgeFilter(Filter):
    """Judges every response of a task at once (concurrently, from cache where possible).

    Returns, per doc, one JSON string per response (repeat): the response and, per dimension, the
    judge's full result (score, raw output, error, failure kind). JSON because lm-eval logs filtered
    responses with ``str()``; failures stay in the samples, counted by the metrics. A judge that fails
    outright still returns every answer (each with the error), and the run exits non-zero.
    """

    def __init__(self, dimensions: list[str] | None = None, repeats: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dimensions = list(dimensions or DIMENSIONS)
        self.repeats = repeats  # the task's repeats (see judging.unpadded)

    def apply(self, resps, docs):
        resps, docs = list(resps), list(docs)
        if not docs:
            return resps
        resps = unpadded(resps, self.repeats, "safety")
        what = f"judging {len(docs)} safety answers ({docs[0].get('location', '?')}, {docs[0].get('variant', '?')})"
        judge = None
        try:
            judge = judge_for(settings_of(docs))
            judged = judge_responses(judge, docs, resps, self.dimensions)
        except Exception as err:  # noqa: BLE001 - the generated answers must reach the samples anyway
            message = f"{type(err).__name__}: {err}"
            judged = failed_entries(resps, self.dimensions, f"the judge failed: {message}")
            report_run_failure(f"{what}: the judge failed after generation ({message})")
        else:
            summaries = judge.last_summaries if isinstance(judge, Panel) else [judge.last_summary]
            configs = [j.config for j in judge.judges] if isinstance(judge, Panel) else [judge.config]
            for k, (summary, config) in enumerate(zip(summaries, configs, strict=True), start=1):
                who = what if len(summaries) == 1 else f"{what}, judge {k} of the panel"
                problem = summary_problem(summary, who)
                if problem:
                    report_run_failure(problem)
                elif summary is not None:
                    attempts = summary.n - summary.n_skipped
                    report_failure_rate(who, attempts, summary.failures, config.max_tokens)
        return [[json.dumps(entry, ensure_ascii=False) for entry in entries] for entries in judged]


def failed_entries(resps: list[list[str]], dimensions: list[str], error: str) -> list[list[dict]]:
    """Every response kept, each dimension a counted request error (the judge could not run at all)."""
    failed = JudgeResult(dimension="respectfulness", error=error, failure=REQUEST_ERROR).to_dict()
    return [
        [{"response": r, **{d: {**failed, "dimension": d} for d in dimensions}} for r in responses]
        for responses in resps
    ]


def judge_responses(
    judge: Judge | Panel,
    docs: list[dict],
    resps: list[list[str]],
    dimensions: list[str] | tuple[str, ...] = DIMENSIONS,
) -> list[list[dict]]:
    """Per doc, per response: ``{"response": ..., <dimension>: judge result dict}``, in one batch.

    The judge sees what the paper's judge sees: the custom (``judge_custom``: the gold description, or
    another one in the wrongcustom control), the location, the original query and the response. A
    panel's result dict holds the panel score and, under ``judges``, every judge's own result. Each
    judge's result carries its reply's token ``usage`` and, when a price is set, its ``cost``.
    """
    items, where = [], []
    for i, (doc, responses) in enumerate(zip(docs, resps, strict=True)):
        for j, response in enumerate(responses):
            if withheld(response):  # counted by process_results, never judged
                continue
            for dimension in dimensions:
                items.append(JudgeItem(doc["judge_custom"], doc["location"], doc["query"], response or "", dimension))
                where.append((i, j, dimension))
    results = judge.score_many(items)
    configs = [j.config for j in judge.judges] if isinstance(judge, Panel) else [judge.config]
    out: list[list[dict]] = [
        [{"response": r, "withheld": WITHHELD} if withheld(r) else {"response": r} for r in responses]
        for responses in resps
    ]
    for (i, j, dimension), result in zip(where, results, strict=True):
        entry = result.to_dict()
        for config, verdict in zip(configs, entry["judges"] if isinstance(judge, Panel) else [entry], strict=True):
            usage = verdict.get("usage") or {}
            cost = config.cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
            if cost is not None:
                verdict["cost"] = None if verdict.get("usage_unknown") else cost  # unknown is not 0
        out[i][j][dimension] = entry
    return out


def process_results(doc: dict, results: list) -> dict:
    """Per-doc scores (mean over repeats) keyed by description, and the judge failures behind them.

    With a panel the score is the panel's (mean or median of its judges), failures count per judge,
    and each judge's own score (``<dimension>_judge<k>``), failures and the units for the panel's
    Krippendorff's alpha (``<dimension>_alpha``: one score per judge per response) come beside it.
    Token usage (and cost, when priced) is summed over every judge result of the doc.
    """
    judged = [json.loads(e) if isinstance(e, str) else e for e in results[0]]
    n_withheld = sum(bool(entry.get("withheld")) for entry in judged)
    judged = [entry for entry in judged if not entry.get("withheld")]
    values: dict[str, float | None] = {}
    failures = attempts = 0
    kinds = dict.fromkeys(FAILURE_KINDS, 0)
    verdicts: list[dict] = []
    panel: dict[str, Any] = {}
    for dimension in DIMENSIONS:
        scores = []
        per_judge: dict[int, list[float]] = {}
        units = []
        for entry in judged:
            result = entry.get(dimension)
            if result is None or result.get("error") == SKIPPED:
                continue
            members = result.get("judges") or [result]
            verdicts.extend(members)
            attempts += len(members)
            for member in members:
                if member.get("score") is None:
                    failures += 1
                    kinds[failure_kind(member)] += 1
            if result.get("score") is not None:
                scores.append(float(result["score"]))
            if "judges" in result:
                units.append([m.get("score") for m in members])
                for k, member in enumerate(members, start=1):
                    per_judge.setdefault(k, [])
                    panel[f"judge_failures_judge{k}"] = panel.get(f"judge_failures_judge{k}", 0)
                    if member.get("score") is None:
                        panel[f"judge_failures_judge{k}"] += 1
                    else:
                        per_judge[k].append(float(member["score"]))
        values[dimension] = sum(scores) / len(scores) if scores else None
        for k, member_scores in per_judge.items():
            mean = sum(member_scores) / len(member_scores) if member_scores else None
            panel[f"{dimension}_judge{k}"] = (doc["description_id"], mean)
        if units:
            panel[f"{dimension}_alpha"] = units
            panel[f"{dimension}_alpha_ci_low"] = units
            panel[f"{dimension}_alpha_ci_high"] = units
    tokens = usage_totals(verdicts)
    costs = [v["cost"] for v in verdicts if "cost" in v]
    return {
        "answers_withheld": n_withheld,
        "respectfulness": (doc["description_id"], values["respectfulness"]),
        "awareness": (doc["description_id"], values["awareness"]),
        "judge_failures": failures,
        "judge_failure_rate": failures / attempts if attempts else 0.0,
        "n_judged": attempts - failures,
        **{KIND_METRICS[kind]: n for kind, n in kinds.items()},
        **{f"judge_{name}": n for name, n in tokens.items()},
        **({"judge_cost": total_cost(costs)} if costs else {}),
        **panel,
    }
