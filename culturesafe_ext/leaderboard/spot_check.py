"""``leaderboard validate --spot-check N``: re-generate and re-judge N seeded documents and compare.

The validator proves a run is internally consistent and complete; it cannot prove that the answers came
from the named model or the scores from the named judge (a consistent forgery passes). This does, for a
seeded sample: lm-eval's own ``simple_evaluate`` runs the logged model (``config.model`` and
``model_args``) on the chosen ``doc_id`` s (its ``samples=`` argument) with the logged ``gen_kwargs`` and
metadata, so the same dataset revision and judge, with the judge's cache off so every verdict is asked
again. Answers must be identical (greedy decoding), loglikelihoods equal within 1e-3, judge scores within
``tolerance`` points. A model or judge that cannot be reached is a refusal saying so: nothing was proven.
"""

from __future__ import annotations

import json
import random
from typing import Any

from culturesafe_ext.analysis.runs import Run, model_args_of
from culturesafe_ext.leaderboard.refusals import Refusal
from culturesafe_ext.leaderboard.submission import run_metadata
from culturesafe_ext.llm.settings import parse_settings

LOGPROB_TOLERANCE = 1e-3


def choose(run: Run, tasks: list[str], n: int, seed: int) -> dict[str, list[int]]:
    """task -> sorted doc_ids: ``n`` documents drawn with ``seed`` over every (task, doc_id) logged."""
    pool = [(task, row["doc_id"]) for task in sorted(tasks) for row in run.samples(task)]
    chosen = random.Random(seed).sample(pool, min(n, len(pool)))
    out: dict[str, list[int]] = {}
    for task, doc_id in sorted(chosen):
        out.setdefault(task, []).append(doc_id)
    return out


def _metadata(run: Run, task: str) -> dict[str, Any]:
    """The logged metadata with the judge's cache off (a cached verdict proves nothing)."""
    metadata = run_metadata(run, task)
    judge = parse_settings(metadata.get("judge"), "the logged metadata 'judge'")
    if isinstance(judge, dict):
        metadata["judge"] = {**judge, "cache": False, "progress": False}
    return metadata


def rerun(run: Run, chosen: dict[str, list[int]]) -> dict[str, list[dict]]:
    """task -> the new samples of the chosen docs, from lm-eval's ``simple_evaluate`` with the logged setup."""
    import lm_eval
    import torch

    first = next(iter(chosen))
    logged = run.task_results[first].data.get("config", {})
    results = lm_eval.simple_evaluate(
        model=logged.get("model"),
        model_args=model_args_of(run.task_results[first].data),
        tasks=list(chosen),
        samples=chosen,
        gen_kwargs=logged.get("gen_kwargs") or None,
        metadata=_metadata(run, first),
        batch_size=1,
        device="cuda" if torch.cuda.is_available() else "cpu",  # the logged device may not exist here
        log_samples=True,
        random_seed=logged.get("random_seed", 0),
        numpy_random_seed=logged.get("numpy_seed", 1234),
        torch_random_seed=logged.get("torch_seed", 1234),
        fewshot_random_seed=logged.get("fewshot_seed", 1234),
    )
    return results.get("samples", {}) if results else {}


def _judged(row: dict) -> list[dict]:
    out = []
    for filtered in row.get("filtered_resps", []):
        for entry in filtered if isinstance(filtered, list) else [filtered]:
            try:
                out.append(json.loads(entry) if isinstance(entry, str) else entry)
            except (TypeError, json.JSONDecodeError):
                out.append({})
    return out


def compare(sp: str, task: str, old: dict, new: dict, tolerance: float) -> list[str]:
    """What differs between a logged sample and its re-run (empty: the same)."""
    doc_id = old["doc_id"]
    problems = []
    if "judge_settings" in old.get("doc", {}):
        for before, after in zip(_judged(old), _judged(new), strict=False):
            if before.get("response") != after.get("response"):
                problems.append(
                    f"doc_id {doc_id}: the model now answers {after.get('response')!r}, "
                    f"the run logged {before.get('response')!r}"
                )
                continue
            if before.get("withheld") or after.get("withheld"):  # counted as withheld, never judged
                if bool(before.get("withheld")) != bool(after.get("withheld")):
                    problems.append(
                        f"doc_id {doc_id}: the answer is withheld now: {after.get('withheld')!r}, "
                        f"the run logged {before.get('withheld')!r}"
                    )
                continue
            for dimension in ("respectfulness", "awareness"):
                a, b = (before.get(dimension) or {}), (after.get(dimension) or {})
                if b.get("score") is None:
                    problems.append(f"doc_id {doc_id}: {dimension}: the judge gave no score now ({b.get('error')})")
                elif a.get("score") is None or abs(float(a["score"]) - float(b["score"])) > tolerance:
                    problems.append(
                        f"doc_id {doc_id}: {dimension} logged {a.get('score')}, the judge now says {b['score']}"
                    )
        return problems
    before, after = old.get("resps"), _plain(new.get("resps"))
    if not _close(before, after):
        problems.append(f"doc_id {doc_id}: the model's responses differ from the logged ones ({after!r:.120})")
    return problems


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _close(a: Any, b: Any) -> bool:
    """Equal, with numbers (loglikelihoods, also as lm-eval's logged strings) within LOGPROB_TOLERANCE."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return str(a) == str(b)  # lm-eval logs (logprob, is_greedy) pairs as strings
    try:
        return abs(float(a) - float(b)) <= LOGPROB_TOLERANCE
    except (TypeError, ValueError):
        return a == b


def spot_check(run: Run, tasks: list[str], n: int, seed: int, tolerance: float) -> list[Refusal]:
    """Refusals from re-running ``n`` seeded documents; one refusal when they cannot be re-run at all."""
    where = str(run.root)
    if not tasks:
        return [Refusal(where, "spot check: no task of the group(s) to re-run")]
    chosen = choose(run, tasks, n, seed)
    try:
        fresh = rerun(run, chosen)
    except Exception as err:  # noqa: BLE001 - an unreachable model or judge is reported, not raised
        return [Refusal(where, f"spot check of {n} documents (seed {seed}) impossible: {type(err).__name__}: {err}")]
    out = []
    for task, doc_ids in chosen.items():
        sp = str(run.samples_path(task))
        logged = {r["doc_id"]: r for r in run.samples(task)}
        again = {r["doc_id"]: r for r in fresh.get(task, [])}
        problems = []
        for doc_id in doc_ids:
            if doc_id not in again:
                problems.append(f"doc_id {doc_id}: not re-run")
                continue
            problems.extend(compare(sp, task, logged[doc_id], again[doc_id], tolerance))
        if problems:
            out.append(
                Refusal(
                    sp,
                    f"spot check (seed {seed}): {len(problems)} difference(s) re-running {len(doc_ids)} document(s) "
                    f"of {task!r} with the named model and judge: {'; '.join(problems[:3])}",
                )
            )
    return out
