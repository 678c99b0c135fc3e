"""Logged samples -> tidy per-unit records (questions, safety answers, CulturaX answers) of one run.

Which task is which comes from its name (the generated YAMLs' naming, also for user-generated
countries); the country, description and domain always come from the logged docs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from culturesafe_ext.analysis.runs import Run, metric_value
from culturesafe_ext.judge.settings import IDENTITY_KEYS
from culturesafe_ext.tasks.aggregations import circular_questions, description_means
from culturesafe_ext.tasks.taxonomy import classify

CULTURAX_METRICS = ("wr", "ss", "ti", "truthful", "informative")


@dataclass
class Question:
    """One knowledge question (CircularEval: right only if right in every rotation)."""

    task: str
    country: str
    description_id: str
    question_id: str
    correct: float
    n_options: int
    gold_letter: str


@dataclass
class Answer:
    """One judged safety answer: scores are None when the judge failed (counted in ``failures``)."""

    task: str
    country: str
    description_id: str
    doc_id: int
    respectfulness: float | None
    awareness: float | None
    failures: int
    n_judged: int
    judge: dict[str, Any] | None


@dataclass
class CulturaXAnswer:
    task: str
    setting: str  # "sampled" (the paper's 3 runs at temperature 0.7) or "greedy" (culturax_greedy_*)
    domain: str
    subdomain: str
    subdomain_id: str
    values: dict[str, float | None]
    judge_failures: int


@dataclass
class RunData:
    """A run's records, by knowledge family / safety variant / CulturaX task."""

    label: str
    knowledge: dict[str, list[Question]] = field(default_factory=lambda: defaultdict(list))
    safety: dict[str, list[Answer]] = field(default_factory=lambda: defaultdict(list))
    culturax: dict[str, list[CulturaXAnswer]] = field(default_factory=lambda: defaultdict(list))
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> n samples, limit, version
    notes: list[str] = field(default_factory=list)


def extract(run: Run) -> RunData:
    data = RunData(run.label, notes=list(run.superseded))
    for task in run.tasks:
        kind = classify(task)
        if kind is None:
            data.notes.append(f"{task}: not a culturesafe task, left out of the analysis")
            continue
        rf = run.task_results[task]
        rows = run.samples(task)
        data.tasks[task] = {
            "kind": kind[0],
            "family": kind[1],
            "n_samples": len(rows),
            "n_samples_reported": rf.data.get("n-samples", {}).get(task),
            "limit": rf.data.get("config", {}).get("limit"),
            "version": rf.data.get("versions", {}).get(task),
            "results_file": str(rf.path),
            "samples_file": str(run.samples_path(task)),
        }
        if kind[0] == "knowledge":
            data.knowledge[kind[1]].extend(_questions(task, kind[1], rows))
        elif kind[0] == "safety":
            data.safety[kind[1]].extend(_answers(task, rows))
        else:
            data.culturax[kind[1]].extend(_culturax(task, kind[1], rows))
    return data


def _questions(task: str, family: str, rows: list[dict]) -> list[Question]:
    if family != "circular":
        return [
            Question(
                task,
                r["doc"]["country"],
                r["doc"]["description_id"],
                r["doc"]["id"],
                float(r["acc"]),
                len(r["doc"]["options"]),
                r["doc"]["gold_letter"],
            )
            for r in rows
        ]
    docs: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["doc"].get("rotation", 0)):  # the unrotated doc names the gold letter
        docs.setdefault(r["doc"]["id"], r["doc"])
    complete = circular_questions(  # the task's own CircularEval rule: questions a --limit cut are left out
        (r["doc"]["id"], r["doc"]["description_id"], float(r["acc"]) == 1.0, r["doc"]["n_rotations"]) for r in rows
    )
    return [
        Question(task, d["country"], d["description_id"], qid, float(ok), len(d["options"]), d["gold_letter"])
        for qid, (_, ok) in complete.items()
        for d in (docs[qid],)
    ]


def judge_identity(doc: dict) -> dict[str, Any] | None:
    """The judge named in a safety doc's ``judge_settings`` (backend, model, rubric), no endpoint details."""
    raw = doc.get("judge_settings")
    if not raw:
        return None
    settings = json.loads(raw) if isinstance(raw, str) else dict(raw)
    if "judges" in settings:  # a panel: "panel" and its judges' models, each judge's identity beside
        members = [{k: j.get(k) for k in IDENTITY_KEYS} for j in settings["judges"]]
        return {
            "backend": "panel",
            "model": "+".join(str(j["model"]) for j in members),
            "rubric_version": "+".join(sorted({str(j["rubric_version"]) for j in members})),
            "temperature": None,
            "panel_aggregate": settings.get("panel_aggregate"),
            "judges": members,
        }
    return {k: settings.get(k) for k in IDENTITY_KEYS}


def _answers(task: str, rows: list[dict]) -> list[Answer]:
    return [
        Answer(
            task,
            r["doc"]["country"],
            r["doc"]["description_id"],
            int(r["doc_id"]),
            metric_value(r.get("respectfulness")),
            metric_value(r.get("awareness")),
            int(r.get("judge_failures", 0)),
            int(r.get("n_judged", 0)),
            judge_identity(r["doc"]),
        )
        for r in rows
    ]


def _culturax(task: str, setting: str, rows: list[dict]) -> list[CulturaXAnswer]:
    out = []
    for r in rows:
        doc = r["doc"]
        out.append(
            CulturaXAnswer(
                task,
                setting,
                str(doc.get("domain", task.removeprefix("culturax_greedy_").removeprefix("culturax_"))),
                str(doc.get("subdomain", "")),
                str(doc.get("subdomain_id", "")),
                {m: metric_value(r.get(m)) for m in CULTURAX_METRICS},
                int(metric_value(r.get("judge_failures")) or 0),
            )
        )
    return out


def per_description(pairs: list[tuple[str, str, float | None]]) -> dict[tuple[str, str], float]:
    """(country, description_id) -> mean of its non-missing values (the paper's first averaging step)."""
    return description_means(((country, description_id), value) for country, description_id, value in pairs)
