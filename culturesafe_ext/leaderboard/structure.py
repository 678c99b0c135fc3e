"""Structure checks: the run is complete and its recorded numbers are the ones its samples give.

Every leaf task of the group(s) present, no ``--limit``, a version per task, the installed task version's
full metric set, lm-eval's own hashes, each per-sample metric recomputed from the logged responses with
the installed task code, each aggregate from those, and each group row from its subtasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.runs import ResultsFile, Run
from culturesafe_ext.leaderboard.recompute import aggregator, as_results, doc_hash, number, plain, resolve, same
from culturesafe_ext.leaderboard.refusals import Refusal
from culturesafe_ext.leaderboard.submission import macro_metrics

_NOT_METRICS = ("alias", "name", "sample_len")


def check_complete(submission: Path, run: Run, groups: tuple[str, ...], expected: list[str]) -> list[Refusal]:
    """Every expected task present and no results file written with ``--limit``."""
    out = [
        Refusal(str(submission), f"task {task!r} of group(s) {', '.join(groups)} is missing")
        for task in expected
        if task not in run.task_results
    ]
    for rf in run.results_files:
        limit = rf.data.get("config", {}).get("limit")
        if limit is not None:
            out.append(Refusal(str(rf.path), f"run with --limit {limit}: only complete runs are accepted"))
    return out


def check_recorded(where: str, task: str, data: dict) -> list[Refusal]:
    """Every document evaluated (lm-eval's n-samples) and a task version recorded."""
    out = []
    n = data.get("n-samples", {}).get(task, {})
    if n and n.get("effective") != n.get("original"):
        out.append(Refusal(where, f"task {task!r}: {n.get('effective')} of {n.get('original')} docs evaluated"))
    if data.get("versions", {}).get(task) is None:
        out.append(Refusal(where, f"task {task!r}: no task version recorded"))
    return out


def check_sample_count(sp: str, task: str, data: dict, rows: list[dict]) -> list[Refusal]:
    n = data.get("n-samples", {}).get(task, {})
    if n and len(rows) != n.get("effective"):
        return [Refusal(sp, f"{len(rows)} samples logged, {n.get('effective')} reported")]
    return []


def _filters(task_obj: Any) -> list[str]:
    return [f["name"] for f in (task_obj.config.filter_list or [])] or ["none"]


def check_definition(where: str, task: str, task_obj: Any, data: dict, config: dict, rows: list[dict]) -> list[Refusal]:
    """Version and the full metric set of the installed task: each metric under each filter, nothing else.

    Required are the task version's metrics that its ``process_results`` yields for these samples (lm-eval
    reports no metric without values, e.g. a panel's per-judge scores for a single judge).
    """
    out = []
    logged_version = data.get("versions", {}).get(task)
    if logged_version is not None and not same(logged_version, task_obj.VERSION):
        out.append(
            Refusal(
                where,
                f"task {task!r}: version {logged_version} logged, the installed culturesafe has "
                f"{task_obj.VERSION}: validate with the culturesafe version the run used",
            )
        )
    metrics = [m["metric"] for m in task_obj.config.metric_list]
    logged = [m.get("metric") for m in config.get("metric_list", []) if isinstance(m, dict)]
    if logged != metrics:
        out.append(Refusal(where, f"task {task!r}: configs lists metrics {logged}, the task version has {metrics}"))
    reported = data.get("results", {}).get(task, {})
    process = resolve(config.get("process_results", ""))
    if process is not None and rows:
        produced = {k for r in rows for k in process(r["doc"], as_results(r["filtered_resps"]))}
        yielded = [m for m in metrics if m in produced]
    else:
        yielded = metrics
    required = [f"{m},{f}" for m in yielded for f in _filters(task_obj)]
    missing = [k for k in required if k not in reported]
    if missing:
        out.append(Refusal(where, f"task {task!r}: metric(s) {missing} of the task version are not reported"))
    every = {f"{m},{f}" for m in metrics for f in _filters(task_obj)}
    extra = [k for k in reported if k not in _NOT_METRICS and "_stderr," not in k and k not in every]
    if extra:
        out.append(Refusal(where, f"task {task!r}: reported {extra}, which the task version does not compute"))
    return out


def check_hashes(sp: str, rf: ResultsFile, task: str, rows: list[dict]) -> list[Refusal]:
    """lm-eval's own hashes: each doc, and the task's samples as a whole."""
    out = []
    bad_docs = [r["doc_id"] for r in rows if r.get("doc_hash") != doc_hash(r["doc"])]
    if bad_docs:
        out.append(Refusal(sp, f"doc_hash does not match the logged doc for doc_id {bad_docs[:5]}"))
    task_hash = rf.data.get("task_hashes", {}).get(task)
    if task_hash is not None:
        from lm_eval.utils import hash_string

        recomputed = hash_string("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
        if recomputed != task_hash:
            out.append(Refusal(sp, f"task_hashes[{task!r}] in {rf.path.name} does not match the samples"))
    return out


def check_metrics(
    results_path: Path, task: str, config: dict, reported: dict, rows: list[dict], sp: str, task_obj: Any = None
) -> list[Refusal]:
    """Per-sample metrics from the logged responses, then each aggregate from them, against the report.

    The metric list and aggregations are the installed task version's (the logged config could have lost one).
    """
    out = []
    process = resolve(config.get("process_results", ""))
    if process is None:
        return [Refusal(sp, f"task {task!r}: its process_results is not the installed culturesafe's (other version?)")]
    for r in rows:
        recomputed = plain(process(r["doc"], as_results(r["filtered_resps"])))
        for metric, value in recomputed.items():
            if not same(value, r.get(metric)):
                out.append(
                    Refusal(
                        sp, f"doc_id {r['doc_id']}: {metric} logged {r.get(metric)!r}, {value!r} from its responses"
                    )
                )
                break
    if task_obj is not None:
        aggregations = task_obj.aggregation()
        specs = [(m["metric"], aggregations.get(m["metric"])) for m in task_obj.config.metric_list]
    else:
        specs = [(s["metric"], aggregator(s.get("aggregation", "mean"))) for s in config.get("metric_list", [])]
    for metric, aggregate in specs:
        if aggregate is None:
            out.append(Refusal(str(results_path), f"task {task!r}: unknown aggregation for {metric!r}"))
            continue
        keys = [k for k in reported if k.startswith(f"{metric},") and "_stderr" not in k]
        for key in keys:
            filt = key.split(",", 1)[1]
            values = [r[metric] for r in rows if r.get("filter", "none") == filt and metric in r]
            value = aggregate([tuple(v) if isinstance(v, list) else v for v in values])
            if not same(float(value), number(reported[key])):
                out.append(
                    Refusal(
                        str(results_path),
                        f"task {task!r}: {key} reported {reported[key]!r}, {float(value)!r} recomputed from {sp}",
                    )
                )
    return out


def check_groups(path: Path, data: dict) -> list[Refusal]:
    """A group row (macro mean, lm-eval's weight_by_size: false) equals the mean of its subtasks' rows."""
    out = []
    results = data.get("results", {})
    for group, members in data.get("group_subtasks", {}).items():
        if not members or group not in results:
            continue
        macro = macro_metrics().get(group, set())
        for key, value in results[group].items():
            if key.split(",")[0] not in macro or not isinstance(value, (int, float)):
                continue
            parts = [results[m][key] for m in members if key in results.get(m, {})]
            if len(parts) == len(members) and not same(sum(parts) / len(parts), value):
                out.append(
                    Refusal(
                        str(path),
                        f"group {group!r}: {key} reported {value!r}, subtasks' mean {sum(parts) / len(parts)!r}",
                    )
                )
    return out
