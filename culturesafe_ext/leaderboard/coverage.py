"""Data coverage checks: the run used the released dataset at a recorded revision, every document exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from culturesafe_ext.leaderboard.recompute import plain
from culturesafe_ext.leaderboard.refusals import Refusal
from culturesafe_ext.tasks.taxonomy import ADACULTURESAFE, BENCHMARKS, benchmark_of


def check_dataset(where: str, task: str, config: dict, allow_bundled: bool) -> list[Refusal]:
    """The dataset source and revision the task logged (each benchmark's own metadata keys)."""
    metadata = config.get("metadata", {}) or {}
    benchmark = benchmark_of(task) or BENCHMARKS[ADACULTURESAFE]
    data_key, revision_key = benchmark.metadata_key, benchmark.revision_key
    source, revision = metadata.get(data_key), metadata.get(revision_key)
    if source == "bundled":
        if not allow_bundled:
            return [Refusal(where, f"task {task!r}: evaluated on the bundled sample, not the released dataset")]
    elif not source or not revision:
        return [
            Refusal(
                where,
                f"task {task!r}: dataset revision not recorded (metadata {data_key}={source!r}, "
                f"{revision_key}={revision!r}): pass both in --metadata so they are logged",
            )
        ]
    return []


def _comparable(doc: dict) -> dict:
    """A doc without the judge settings (the loader re-resolves those from this machine's environment)."""
    return {k: v for k, v in doc.items() if k != "judge_settings"}


def check_documents(sp: str, task: str, task_obj: Any, rows: list[dict]) -> list[Refusal]:
    """Every document of the dataset revision exactly once, and each logged doc equal to it."""
    docs = list(task_obj.eval_docs)
    seen = Counter(r.get("doc_id") for r in rows)
    twice = sorted(d for d, n in seen.items() if n > 1)
    missing = [i for i in range(len(docs)) if i not in seen]
    unknown = sorted(d for d in seen if not isinstance(d, int) or not 0 <= d < len(docs))
    out = []
    if twice:
        out.append(Refusal(sp, f"task {task!r}: doc_id {twice[:10]} logged more than once"))
    if missing:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: {len(missing)} of the dataset's {len(docs)} documents are not in the samples "
                f"(doc_id {missing[:10]})",
            )
        )
    if unknown:
        out.append(Refusal(sp, f"task {task!r}: doc_id {unknown[:10]} is not a document of the dataset"))
    changed = [
        r["doc_id"]
        for r in rows
        if r.get("doc_id") not in unknown and _comparable(plain(docs[r["doc_id"]])) != _comparable(r.get("doc", {}))
    ]
    if changed:
        out.append(Refusal(sp, f"task {task!r}: doc_id {changed[:10]} differs from the dataset's document"))
    return out
