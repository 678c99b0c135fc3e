"""Write the three CulturaX reference answers (helpful, harmless, honest) for new questions.

:func:`generate`: questions -> near-duplicate questions removed first (listed with their twins, so
no call is spent on them) -> one cached, checked, retried LLM call per question -> review files.
:func:`publish`: the verified rows, with the CulturaX column names (``id, question, helpful, harmless,
honest, subdomain_id, subdomain, domain, topic, simhash, cluster_id, reference_suspect,
reference_suspect_reason, split``), as the Hub layout: one config, splits train / validation / test
(80/10/10 by near-duplicate cluster, seeded, so a cluster never straddles two splits).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict
from pathlib import Path

from datasets import Features, Value

from culturesafe_ext.judge import Judge
from culturesafe_ext.near_duplicates import to_hex

from ..hub_layout import CardText, ConfigTable, write_hub_dataset
from . import engine, review, workdir
from .dedup import remove_near_duplicates
from .inputs import read_questions
from .items import REFERENCE_KEYS, references_in_reply
from .prompts import load_prompt

DATASET = "culturax"
CONFIG = "default"
SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
# The CulturaX columns (the CulturaX builder's schema uses the same names).
FEATURES = Features(
    {
        "id": Value("string"),
        "question": Value("string"),
        "helpful": Value("string"),
        "harmless": Value("string"),
        "honest": Value("string"),
        "subdomain_id": Value("string"),
        "subdomain": Value("string"),
        "domain": Value("string"),
        "topic": Value("string"),
        "simhash": Value("string"),
        "cluster_id": Value("int64"),
        "reference_suspect": Value("bool"),
        "reference_suspect_reason": Value("string"),
        "split": Value("string"),
    }
)
_WORD = re.compile(r"[^\W\d_]{4,}")


def suspect(question: str, answers: dict[str, str]) -> str:
    """Why the references may not answer the question ("" if no sign): no content word in common.

    A cheap flag for reviewers (the released CulturaX has answers about salsa to a question about
    humour), not a verdict.
    """
    words = {w.lower() for w in _WORD.findall(question)}
    if not words:
        return ""
    silent = [k for k in REFERENCE_KEYS if not words & {w.lower() for w in _WORD.findall(answers[k])}]
    return f"no word of the question (4+ letters) in the {', '.join(silent)} answer(s)" if silent else ""


def assign_splits(n_clusters: int, seed: int) -> list[str]:
    """A split name per cluster: seeded shuffle, then 80/10/10 by count (rounded, train takes the rest)."""
    order = list(range(n_clusters))
    random.Random(seed).shuffle(order)
    n_val = round(n_clusters * SPLITS[1][1])
    n_test = round(n_clusters * SPLITS[2][1])
    names = [""] * n_clusters
    for rank, c in enumerate(order):
        names[c] = "validation" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return names


def generate(
    questions_path: Path,
    work: Path,
    judge: Judge,
    *,
    max_attempts: int = 3,
    max_tokens: int = 1024,
    threshold: int = 10,
    seed: int = 0,
    version: str = "v1",
) -> dict:
    """Deduplicate the questions, write their references, write candidates and review files."""
    questions = read_questions(questions_path)
    all_items = [{"id": q.id, "kind": DATASET, "question": q.question, "q": asdict(q)} for q in questions]
    kept, removed, result = remove_near_duplicates(all_items, lambda c: c["question"], threshold)
    fps = result.fingerprints if result else []
    # Clusters over every input question (removed ones included), numbered in order of first member.
    cluster_of = list(range(len(all_items)))
    for members in result.clusters if result else []:
        for m in members:
            cluster_of[m] = members[0]
    numbering = {c: n for n, c in enumerate(dict.fromkeys(cluster_of))}
    split_of = assign_splits(len(numbering), seed)
    index = {c["id"]: i for i, c in enumerate(all_items)}

    prompt = load_prompt("culturax", version)
    tasks = [
        engine.Task(
            key=c["id"],
            prompt=prompt,
            values={"question": c["question"], "subdomain": c["q"]["subdomain"] or "(not given)"},
            n_items=1,
            parse=references_in_reply,
            identity=lambda item: item["helpful"],
        )
        for c in kept
    ]
    outcomes, stats = engine.run(judge, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
    candidates = []
    for c, outcome in zip(kept, outcomes, strict=True):
        if not outcome.complete:
            continue
        answers = outcome.items[0]
        i = index[c["id"]]
        q = c["q"]
        meta = {k: q[k] for k in ("subdomain_id", "subdomain", "domain", "topic")}
        meta |= {
            "simhash": to_hex(int(fps[i])),
            "cluster_id": numbering[cluster_of[i]],
            "split": split_of[numbering[cluster_of[i]]],
        }
        context = f"Subdomain: {q['subdomain'] or '-'}; domain: {q['domain'] or '-'}"
        fields = {"question": c["question"], **answers}
        candidates.append({"id": c["id"], "kind": DATASET, "context": context, "fields": fields, "base": meta})
    report = {
        "dataset": DATASET,
        "inputs": str(questions_path),
        "generator": engine.generator_settings(judge),
        "prompts": [prompt.id],
        "settings": {"max_attempts": max_attempts, "max_tokens": max_tokens, "threshold": threshold, "seed": seed},
        "questions": len(questions),
        "stats": asdict(stats),
        "incomplete_tasks": [o.report() for o in outcomes if not o.complete],
        "invalid_replies": [
            {"key": o.key, **asdict(a)} for o in outcomes if o.complete for a in o.attempts if a.problems
        ],
        "removed_near_duplicates": removed,
        "candidates": {"culturax": len(candidates)},
    }
    workdir.write(work, candidates, report)
    review.export(candidates, work / workdir.REVIEW)
    return report


def rows_of(kept: list[dict]) -> list[dict]:
    rows = []
    for c in kept:
        f = c["fields"]
        reason = suspect(f["question"], f)
        row = {
            "id": c["id"],
            **{k: f[k] for k in ("question", *REFERENCE_KEYS)},
            **c["base"],
            "reference_suspect": bool(reason),
            "reference_suspect_reason": reason,
        }
        rows.append({k: row[k] for k in FEATURES})
    return rows


def publish(out: Path, decisions: dict, report: dict, candidates: list[dict]) -> dict:
    """Write the verified rows as the Hub layout in ``out``; return the build report."""
    kept, counts = review.apply(candidates, decisions)
    rows = rows_of(kept)
    tables = [ConfigTable(CONFIG, name, FEATURES, [r for r in rows if r["split"] == name]) for name, _ in SPLITS]
    empty = [t.split for t in tables if not t.rows]
    tables = [t for t in tables if t.rows]  # `datasets` cannot load a declared split with no rows
    build = {
        "generation": {k: v for k, v in report.items() if k != "invalid_replies"},
        "empty_splits_not_written": empty,
        "review": counts,
        "rows": {name: sum(r["split"] == name for r in rows) for name, _ in SPLITS},
        "reference_suspect": sum(r["reference_suspect"] for r in rows),
    }
    stats = report["stats"]
    write_hub_dataset(
        out,
        tables,
        CardText(
            pretty_name="CulturaX-style questions with helpful, harmless and honest references",
            summary="Cultural questions, each with three LLM-written reference answers (helpful, harmless, honest), "
            "written by `culturesafe generate culturax` and verified by people.",
            sections=[
                (
                    "Generation",
                    f"Generator `{report['generator'].get('model', '?')}` ({report['generator'].get('backend')}), "
                    f"prompt `{report['prompts'][0]}`. {report['questions']} questions; "
                    f"{len(report['removed_near_duplicates'])} removed as near-duplicates (SimHash, Hamming "
                    f"threshold {report['settings']['threshold']}; each listed with its twin in `build_report.json`); "
                    f"{stats['complete']} got valid references, {stats['incomplete']} did not after "
                    f"{report['settings']['max_attempts']} attempts ({stats['unparseable_replies']} replies without "
                    f"JSON, {stats['replies_with_invalid_items']} with invalid answers, {stats['failed_requests']} "
                    "failed requests).",
                ),
                (
                    "Human verification",
                    f"{counts['candidates']} candidates; {counts['reviewed']} reviewed: {counts['accepted']} "
                    f"accepted, {counts['edited']} edited (kept), {counts['rejected']} rejected; "
                    f"{counts['unreviewed']} not reviewed (not published).",
                ),
                (
                    "Splits",
                    f"80/10/10 by near-duplicate cluster (seed {report['settings']['seed']}): "
                    + ", ".join(f"{k} {v}" for k, v in build["rows"].items())
                    + f". {build['reference_suspect']} rows flagged `reference_suspect` (no content word of the "
                    "question in a reference answer).",
                ),
            ],
            tags=["cultural-alignment", "lm-eval", "synthetic"],
        ),
    )
    (out / "build_report.json").write_text(json.dumps(build, ensure_ascii=False, indent=2), encoding="utf-8")
    return build
