"""Write the three CulturaX reference answers (helpful, harmless, honest) for new questions.

:func:`generate`: questions -> near-duplicate questions removed first (listed with their twins, so
no call is spent on them) -> one cached, checked, retried LLM call per question -> review files.
:func:`publish`: the verified rows, in the CulturaX features (``culturesafe_ext.data.culturax_schema``)
and the CulturaX builder's Hub layout: configs ``all`` and one per UNESCO domain present, splits
train / validation / test (80/10/10 by near-duplicate cluster, seeded: a cluster never straddles two).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from culturesafe_ext.data.culturax_schema import ALL, DOMAINS, FEATURES, SPLITS, SUBDOMAINS, config_name
from culturesafe_ext.llm import LLMClient
from culturesafe_ext.near_duplicates import to_hex

from ..culturax_audit import audit_references
from ..culturax_source import SourceRow
from ..culturax_split import split_units
from ..hub_layout import CardText, ConfigTable, write_hub_dataset
from . import engine, review, workdir
from .dedup import remove_near_duplicates
from .inputs import read_questions
from .items import REFERENCE_KEYS, references_in_reply
from .prompts import load_prompt

DATASET = "culturax"


def generate(
    questions_path: Path,
    work: Path,
    writer: LLMClient,
    *,
    max_attempts: int = 3,
    max_tokens: int = 1024,
    threshold: int = 10,
    seed: int = 0,
    version: str = "v1",
) -> dict:
    """Deduplicate the questions, write their references, write candidates and review files."""
    questions = read_questions(questions_path)
    plan = plan_questions(questions, threshold, seed)
    kept = plan.kept
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
    outcomes, stats = engine.run(writer, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
    candidates = [plan.candidate(c, o.items[0]) for c, o in zip(kept, outcomes, strict=True) if o.complete]
    report = {
        "dataset": DATASET,
        "inputs": str(questions_path),
        "generator": engine.generator_settings(writer),
        "prompts": [prompt.id],
        "settings": {"max_attempts": max_attempts, "max_tokens": max_tokens, "threshold": threshold, "seed": seed},
        "questions": len(questions),
        "stats": asdict(stats),
        "incomplete_tasks": [o.report() for o in outcomes if not o.complete],
        "invalid_replies": [
            {"key": o.key, **asdict(a)} for o in outcomes if o.complete for a in o.attempts if a.problems
        ],
        "removed_near_duplicates": plan.removed,
        "candidates": {"culturax": len(candidates)},
    }
    workdir.write(work, candidates, report)
    review.export(candidates, work / workdir.REVIEW)
    return report


@dataclass
class Plan:
    """The questions after near-duplicate removal, each with its cluster and split (the release builder's)."""

    all_items: list[dict]
    kept: list[dict]
    removed: list[dict]
    fps: list
    cluster_of: list[int]
    split_of: list[str]
    index: dict[str, int]

    def candidate(self, c: dict, answers: dict) -> dict:
        """A review candidate: the question, its three references and its labels, cluster and split."""
        i = self.index[c["id"]]
        q = c["q"]
        meta = _labels(q)
        meta |= {
            "simhash": to_hex(int(self.fps[i])),
            "cluster_id": self.all_items[self.cluster_of[i]]["id"],
            "split": self.split_of[i],
        }
        context = f"Subdomain: {q['subdomain'] or '-'}; domain: {q['domain'] or '-'}"
        fields = {"question": c["question"], **{k: answers[k] for k in REFERENCE_KEYS}}
        return {"id": c["id"], "kind": DATASET, "context": context, "fields": fields, "base": meta}


def plan_questions(questions: list, threshold: int, seed: int) -> Plan:
    """Near-duplicate questions removed first (listed with their twins, so no call is spent on them); every
    question (removed ones included) in a cluster, and the release builder's 80/10/10 split by cluster."""
    all_items = [{"id": q.id, "kind": DATASET, "question": q.question, "q": asdict(q)} for q in questions]
    kept, removed, result = remove_near_duplicates(all_items, lambda c: c["question"], threshold)
    fps = result.fingerprints if result else []
    cluster_of = list(range(len(all_items)))
    for members in result.clusters if result else []:
        for m in members:
            cluster_of[m] = members[0]
    units: dict[int, list[int]] = {}
    for i, c in enumerate(cluster_of):
        units.setdefault(c, []).append(i)
    labels = [_labels(c["q"]) for c in all_items]
    split_of = split_units(
        list(units.values()),
        [lab["subdomain_id"] if lab["subdomain_id"] is not None else -1 for lab in labels],
        [lab["domain"] for lab in labels],
        seed,
    )
    index = {c["id"]: i for i, c in enumerate(all_items)}
    return Plan(all_items, kept, removed, fps, cluster_of, split_of, index)


def _labels(q: dict) -> dict:
    """subdomain_id (int or None), subdomain, domain, topic; names from the UNESCO table if only the id is given."""
    sub_id = int(q["subdomain_id"]) if q["subdomain_id"] else None
    known = SUBDOMAINS.get(sub_id) if sub_id is not None else None
    return {
        "subdomain_id": sub_id,
        "subdomain": q["subdomain"] or (known.name if known else ""),
        "domain": q["domain"] or (known.domain if known else ""),
        "topic": q["topic"],
    }


def rows_of(kept: list[dict]) -> list[dict]:
    """Published rows; references are audited with the release builder's test (flagged, never dropped)."""
    sources = [
        SourceRow(n + 1, c["fields"]["question"], 0, "", *(c["fields"][k] for k in REFERENCE_KEYS))
        for n, c in enumerate(kept)
    ]
    reasons = audit_references(sources)
    rows = []
    for c, reason in zip(kept, reasons, strict=True):
        f = c["fields"]
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
    domains = [d for d in DOMAINS if any(r["domain"] == d for r in rows)]
    tables = [
        ConfigTable(
            config_name(dom), split, FEATURES, [r for r in rows if r["split"] == split and dom in (ALL, r["domain"])]
        )
        for dom in [ALL, *domains]
        for split in SPLITS
    ]
    empty = [f"{t.config}/{t.split}" for t in tables if not t.rows]
    tables = [t for t in tables if t.rows]  # `datasets` cannot load a declared split with no rows
    build = {
        "generation": {k: v for k, v in report.items() if k != "invalid_replies"},
        "empty_splits_not_written": empty,
        "review": counts,
        "rows": {name: sum(r["split"] == name for r in rows) for name in SPLITS},
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
                    "80/10/10 by near-duplicate cluster, stratified by subdomain within each domain as the "
                    f"release builder does (seed {report['settings']['seed']}): "
                    + ", ".join(f"{k} {v}" for k, v in build["rows"].items())
                    + f". {build['reference_suspect']} rows flagged `reference_suspect` by the release "
                    "builder's audit (tf-idf cosine of question and references below its calibrated threshold).",
                ),
                # steps that wrote the references their own way (culturax-references: rejection sampling)
                *(tuple(section) for section in report.get("card_sections", [])),
            ],
            tags=["cultural-alignment", "lm-eval", "synthetic"],
        ),
    )
    (out / "build_report.json").write_text(json.dumps(build, ensure_ascii=False, indent=2), encoding="utf-8")
    return build
