"""The synthesized dataset folder: Hub layout and card, ``items.jsonl`` and ``synthesis_report.json``.

The card counts items per culture, query type, backend and rejection reason, lists source domains and states
the leakage check (how many evaluation docs each item was compared with, what was removed, 0 left).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from datasets import Features, Value

from culturesafe_ext.data.synthetic_items import ITEMS_FILE, REPORT_FILE

from ..hub_layout import CardText, ConfigTable, write_hub_dataset

CONFIG, SPLIT = "items", "train"
PROVENANCE = ("backend", "query", "url", "corpus_id", "title", "retrieved_at", "content_hash", "domain")
FEATURES = Features(
    {
        **{k: Value("string") for k in ("id", "culture", "culture_name", "kind", "task", "prompt", "completion")},
        "doc": Value("string"),  # the doc in the task's schema, as JSON
        "evidence": Value("string"),
        **{k: Value("string") for k in PROVENANCE},
    }
)


def table_row(row: dict) -> dict:
    prov = row["provenance"]
    return {
        **{k: row[k] for k in ("id", "culture", "culture_name", "kind", "task", "prompt", "completion", "evidence")},
        "doc": json.dumps(row["doc"], ensure_ascii=False),
        **{k: (None if prov.get(k) is None else str(prov[k])) for k in PROVENANCE},
    }


def write(out: Path, rows: list[dict], report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / ITEMS_FILE).open("w", encoding="utf-8") as fh:
        for row in rows:
            item = {k: row[k] for k in ("id", "prompt", "completion", "culture", "kind", "task", "doc", "evidence")}
            item |= {k: row[k] for k in ("answer_evidence", "judge_respectfulness") if k in row}
            fh.write(json.dumps({**item, "provenance": row["provenance"]}, ensure_ascii=False) + "\n")
    write_hub_dataset(out, [ConfigTable(CONFIG, SPLIT, FEATURES, [table_row(r) for r in rows])], card(report))
    (out / REPORT_FILE).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def counts(rows: list[dict]) -> dict:
    return {
        "per_culture": dict(sorted(Counter(r["culture"] for r in rows).items())),
        "per_query_type": dict(sorted(Counter(r["kind"] for r in rows).items())),
        "per_culture_and_query_type": dict(sorted(Counter(f"{r['culture']}/{r['kind']}" for r in rows).items())),
        "per_backend": dict(sorted(Counter(r["provenance"]["backend"] for r in rows).items())),
        "source_domains": dict(Counter(r["provenance"]["domain"] for r in rows).most_common()),
    }


def _table(title: str, values: dict) -> str:
    lines = [f"| {title} | items |", "|---|---|"] + [f"| {k} | {v} |" for k, v in values.items()]
    return "\n".join(lines) if values else "(none)"


def card(report: dict) -> CardText:
    c, leak, task = report["counts"], report["leakage"], report["task"]
    rejections = report["rejections"]
    tokens = report["tokens"]
    cost = f", estimated cost ${tokens['cost']:.4f}" if tokens.get("cost") is not None else ""
    return CardText(
        pretty_name=f"Synthesized training items for {task['name']} ({', '.join(report['settings']['cultures'])})",
        summary=(
            f"Training items for the lm-eval task `{task['name']}`, written by an LLM in the task's own doc schema, "
            "grounded in retrieved passages (each with an evidence span that occurs in its passage) and rendered by "
            "the task's own `doc_to_text` / `doc_to_target` / `doc_to_choice`, with `culturesafe synthesize` "
            "(CultureManager's search query generation and task-aware data synthesis). Train per-culture adapters "
            "with `culturesafe train adapters --items <this folder>`."
        ),
        sections=[
            ("Items per culture", _table("culture", c["per_culture"])),
            ("Items per query type", _table("query type", c["per_query_type"])),
            ("Items per search backend", _table("backend", c["per_backend"])),
            ("Source domains", _table("domain", c["source_domains"])),
            (
                "Rejections",
                _table("reason", rejections) + "\n\nEvery rejected query, page and doc is listed with its "
                "reason in `synthesis_report.json`.",
            ),
            (
                "Leakage against evaluation",
                f"Every item was compared with all {leak['evaluation_docs']} evaluation docs of `{task['name']}` "
                f"(split `{task['eval_split']}`): SimHash within Hamming distance {leak['threshold']} or an exact "
                f"shared {leak['ngram']}-gram. {len(leak['removed'])} removed, each listed with its evaluation twin "
                f"in `synthesis_report.json`; **{leak['leaked_in_output']} leaked items** in this dataset (re-checked "
                "when training reads it).",
            ),
            (
                "Generation",
                f"Generator `{report['generator'].get('backend')}` model `{report['generator'].get('model')}`; "
                f"example docs from {task['examples_from']}. Tokens: {tokens['prompt_tokens']} prompt + "
                f"{tokens['completion_tokens']} completion ({tokens['new_prompt_tokens']} + "
                f"{tokens['new_completion_tokens']} sent in the last run){cost}.",
            ),
        ],
        tags=["synthetic", "culture", "lm-eval", "culturemanager"],
    )
