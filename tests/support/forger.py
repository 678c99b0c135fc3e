"""A careful forger's tools: edit a real run's safety samples, then recompute everything a validator could
check without re-deriving (per-sample metrics, aggregates, counts, lm-eval's doc and task hashes), with the
installed task code. Used by e2e/test_validate.py and e2e/test_forgeries.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from culturesafe_ext.analysis.runs import read_jsonl
from culturesafe_ext.leaderboard.recompute import doc_hash

SAFETY = "adaculturesafe_safety_china"


def files(folder: Path, task: str = SAFETY) -> tuple[Path, dict, Path, list[dict]]:
    """The run's results file (path, parsed) and ``task``'s samples file (path, rows)."""
    [results] = folder.rglob("results_*.json")
    [samples] = folder.rglob(f"samples_{task}_*.jsonl")
    return results, json.loads(results.read_text()), samples, read_jsonl(samples)


def reseal(folder: Path, data: dict, rows: list[dict], task: str = SAFETY) -> None:
    """Per-sample metrics, aggregates, counts and lm-eval's hashes of the safety task, all made consistent."""
    from lm_eval.utils import hash_string

    from culturesafe_ext.tasks.aggregations import mean_by_description, total
    from culturesafe_ext.tasks.safety import process_results

    results, _, samples, _ = files(folder, task)
    for r in rows:
        r.update(process_results(r["doc"], r["filtered_resps"]))
        r["doc_hash"] = doc_hash(r["doc"])
    reported = data["results"][task]
    for metric in ("respectfulness", "awareness"):
        if f"{metric},judge" in reported:
            reported[f"{metric},judge"] = mean_by_description(tuple(r[metric]) for r in rows)
    for key in reported:
        metric = key.split(",")[0]
        if key.endswith(",judge") and metric.startswith(("judge_", "n_judged")) and metric != "judge_failure_rate":
            reported[key] = float(total(r[metric] for r in rows if metric in r))
    if "judge_failure_rate,judge" in reported:
        reported["judge_failure_rate,judge"] = sum(r["judge_failure_rate"] for r in rows) / len(rows)
    reported["sample_len"] = len(rows)
    data["n-samples"][task] = {"original": len(rows), "effective": len(rows)}
    data["task_hashes"][task] = hash_string("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    results.write_text(json.dumps(data, ensure_ascii=False))


def edit_entry(row: dict, edit) -> None:
    """Apply ``edit`` to the judged JSON of a row's (single) filtered response."""
    entry = json.loads(row["filtered_resps"][0][0])
    edit(entry)
    row["filtered_resps"] = [[json.dumps(entry, ensure_ascii=False)]]


def set_score(row: dict, dimension: str, score: float, raw: str | None = None, response: str | None = None) -> None:
    def edit(entry: dict) -> None:
        entry[dimension]["score"] = score
        if raw is not None:
            entry[dimension]["raw"] = raw
        if response is not None:
            entry["response"] = response
            row["resps"] = [[response]]

    edit_entry(row, edit)


def copy(run: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(run, target)
    return target
