"""One synthesis run end to end: stages of :mod:`.pipeline` in order, then the folder of :mod:`.output`."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from culturesafe_ext.data.leakage import NGRAM, content_text, find_leaks
from culturesafe_ext.data.task_format import TaskFormat
from culturesafe_ext.sources import Sources

from ..generate.engine import generator_settings
from . import output, pipeline
from .llm import LLMClient

log = logging.getLogger("culturesafe.synthesize")


class NothingSynthesized(ValueError):
    """The run produced no item; the message says where everything went.

    A ``ValueError`` like the project's other errors a user acts on (inputs, settings): the CLI prints its
    message as one line, without a type name or traceback."""


def synthesize(
    fmt: TaskFormat,
    client: LLMClient,
    sources: Sources,
    settings: pipeline.SynthesisSettings,
    out: Path,
    task_info: dict,
    say=print,
    judge: object | None = None,
) -> dict:
    """Queries -> passages -> docs -> balance -> near-duplicates -> leakage -> folder; the report."""
    sources.warm()  # page extractors start while the LLM writes the queries
    say(f"[1/4] queries: {len(settings.cultures)} culture(s), {settings.queries}")
    queries, q_counts, q_dups = pipeline.write_queries(fmt, client, settings)
    n_queries = sum(len(v) for v in queries.values())
    say(f"      {n_queries} distinct queries ({q_dups} duplicates removed)")
    language = pipeline.task_language(fmt, settings.language)
    early = None
    if settings.max_passages is None:  # docs' first requests go out as passages arrive (see EarlyDocs)
        early = pipeline.EarlyDocs(fmt, client, settings, language)
        say(f"[2/4] retrieval: {sources.backend.name}, with the docs' first requests as passages arrive")
    else:
        say(f"[2/4] retrieval: {sources.backend.name}")
    passages, retrieval = pipeline.retrieve(sources, queries, settings, early)
    say(f"      {retrieval['summary']}")
    known = early.languages if early is not None else None
    passages, other_language = pipeline.keep_language(passages, language, settings.passage_chars, known)
    if other_language:
        say(f"      {len(other_language)} passages not in the task's language ({language}) set aside")
    n_passages = sum(len(v) for v in passages.values())
    say(f"[3/4] docs: up to {settings.per_passage} per passage over {n_passages} passages")
    rows, d_counts = pipeline.write_docs(fmt, client, passages, settings, early)
    generated = len(rows)
    stages = {"queries": q_counts, "docs": d_counts}
    unanswered: list[dict] = []
    judged: dict | None = None
    if pipeline.answers_needed(fmt, settings.completion):
        say(f"[3b/4] answers: a grounded, respectful answer for each of {len(rows)} docs")
        rows, stages["answers"], unanswered = pipeline.write_answers(client, rows, settings)
        if judge is not None and settings.min_respect is not None:
            say(f"[3c/4] judge: keep answers scored >= {settings.min_respect} for respectfulness")
            rows, judged = pipeline.judge_answers(judge, rows, settings.min_respect)
    rows = [{k: v for k, v in r.items() if k != "passage"} for r in rows]
    rows = pipeline.balance(rows, fmt, settings.seed)
    say(f"[4/4] filters: near-duplicates (SimHash {settings.threshold}) and leakage against {fmt.name}")
    rows, near_dups = pipeline.dedup(rows, fmt, settings.threshold)
    rows, leaked, n_eval = pipeline.remove_leaks(rows, fmt, settings.threshold)
    keys = fmt.keys
    evaluation = [content_text(d, keys) for d in fmt.eval_docs()]
    left = find_leaks([content_text(r["doc"], keys) for r in rows], evaluation, settings.threshold)
    rejections = Counter()
    for stage in stages.values():
        rejections.update(stage.rejections)
    if unanswered:
        rejections["no grounded answer"] = len(unanswered)
    if judged:
        if judged["below_threshold"]:
            rejections[f"judge respectfulness < {judged['threshold']:g}"] = judged["below_threshold"]
        for kind, n in judged["failures"].items():
            rejections[f"judge failed ({kind})"] = n
    rejections.update(retrieval["rejections"])
    if other_language:
        rejections[f"passage not in the task's language ({language})"] = len(other_language)
    if near_dups:
        rejections["near-duplicate"] = len(near_dups)
    if leaked:
        rejections["leaked (near an evaluation doc)"] = len(leaked)
    tokens = _tokens(client, *stages.values())
    report = {
        "task": {
            **task_info,
            "name": fmt.name,
            "output_type": fmt.output_type,
            "eval_split": fmt.eval_split,
            "examples_from": fmt.examples_from,
            "schema": fmt.keys,
        },
        "settings": {**asdict(settings), "cultures": list(settings.cultures)},
        "generator": generator_settings(client),
        "search": {"backend": sources.backend.name, "identity": sources.backend.identity},
        "queries": {f"{c}/{k}": v for (c, k), v in queries.items()},
        "duplicate_queries_removed": q_dups,
        "stages": {name: asdict(counts) for name, counts in stages.items()},
        "completions": "model-written answers" if "answers" in stages else "the task's target",
        "unanswered": unanswered,
        "judge": judged,
        "retrieval": retrieval,
        "language": {"required": language, "rejected_passages": other_language},
        "generated_docs": generated,
        "rejections": dict(sorted(rejections.items())),
        "removed_near_duplicates": near_dups,
        "leakage": {
            "evaluation_docs": n_eval,
            "threshold": settings.threshold,
            "ngram": NGRAM,
            "removed": leaked,
            "leaked_in_output": len(left),
        },
        "items": len(rows),
        "counts": output.counts(rows),
        "tokens": tokens,
    }
    if left:  # cannot happen after remove_leaks; recorded and refused rather than assumed
        raise NothingSynthesized(f"{len(left)} items still leak after the filter; nothing written")
    output.write(out, rows, report)
    if not rows:
        raise NothingSynthesized(
            f"no item survived: {n_queries} queries, {n_passages} passages, {generated} docs generated; rejections: "
            + (", ".join(f"{n} {r}" for r, n in sorted(rejections.items())) or "none")
            + f" (see {out / 'synthesis_report.json'})"
        )
    return report


def _tokens(client: LLMClient, *stages: pipeline.StageCounts) -> dict:
    names = ("prompt_tokens", "completion_tokens", "new_prompt_tokens", "new_completion_tokens")
    out = {n: sum(int(s.stats.get(n, 0)) for s in stages) for n in names}
    out["cost"] = client.config.cost(out["prompt_tokens"], out["completion_tokens"])
    return out
