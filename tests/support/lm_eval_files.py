"""Hand-made lm-eval output folders (results_*.json + samples_*.jsonl in lm-eval 0.4.13's layout).

For tests whose expected correlation, cross-tab and F1 are known exactly; the layout is the one a real
``lm_eval --output_path ... --log_samples`` run writes (see tests/e2e/test_analysis.py for the real thing).
"""

from __future__ import annotations

import json
from pathlib import Path

DATE_ID = "2026-01-01T00-00-00.000000"
JUDGE = {"backend": "openai", "model": "judge-x", "rubric_version": "v1", "temperature": 0.0}


def _doc(kind: str, i: int, country: str, description_id: str, **fields: object) -> dict:
    """A logged doc: item ``i`` of kind ``k`` (knowledge) or ``s`` (safety) under one description."""
    return {"id": f"{description_id}/{kind}{i}", "description_id": description_id, "country": country, **fields}


def knowledge_rows(country: str, description_id: str, correct: list[int], gold: str = "B") -> list[dict]:
    rows = []
    mcq = {"options": ["w", "x", "y", "z"], "gold_letter": gold, "gold_index": "ABCD".index(gold)}
    for i, ok in enumerate(correct):
        doc = _doc("k", i, country, description_id, **mcq)
        rows.append({"doc": doc, "filter": "none", "acc": float(ok), "acc_by_description": [description_id, float(ok)]})
    return rows


def safety_rows(
    country: str, description_id: str, scores: list[float | None], variant: str = "plain", awareness: float = 5.0
) -> list[dict]:
    rows = []
    settings = json.dumps({**JUDGE, "base_url": "http://127.0.0.1:1/v1"})
    for i, score in enumerate(scores):
        doc = _doc("s", i, country, description_id, variant=variant, judge_settings=settings)
        failed = score is None
        rows.append(
            {
                "doc": doc,
                "filter": "judge",
                "respectfulness": [description_id, score],
                "awareness": [description_id, None if failed else awareness],
                "judge_failures": 2 if failed else 0,
                "n_judged": 0 if failed else 2,
            }
        )
    return rows


def write_run(folder: Path, tasks: dict[str, list[dict]], model: str = "handmade", limit=None) -> Path:
    """Write the folder; doc_id is the row's index, as lm-eval numbers docs."""
    sub = folder / model
    sub.mkdir(parents=True, exist_ok=True)
    for task, rows in tasks.items():
        lines = [json.dumps({"doc_id": i, **row}) for i, row in enumerate(rows)]
        (sub / f"samples_{task}_{DATE_ID}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = {
        "results": {task: {"alias": task} for task in tasks},
        "group_subtasks": {task: [] for task in tasks},
        "configs": {task: {"task": task} for task in tasks},
        "versions": {task: 1.0 for task in tasks},
        "n-samples": {task: {"original": len(rows), "effective": len(rows)} for task, rows in tasks.items()},
        "config": {"model": "hf", "model_args": {"pretrained": model}, "limit": limit},
        "model_name": model,
        "lm_eval_version": "0.4.13",
    }
    (sub / f"results_{DATE_ID}.json").write_text(json.dumps(results), encoding="utf-8")
    return folder
