"""Is an lm-eval output folder a complete, honest run fit for the leaderboard? Every refusal names file and reason.

Checks: every leaf task of the group(s) present; no ``--limit`` (and every doc evaluated); a version for
each task; a recorded dataset revision; an identified judge for judged tasks; and the metrics recomputed
from the logged samples equal the reported ones. Recomputing uses the installed culturesafe task code
(matched by its source text, which lm-eval logs in ``configs``) and lm-eval's own hashes:
``doc_hash`` of each doc and ``task_hashes`` of each task.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.runs import Run, read_run

TOLERANCE = 1e-9
_DEF = re.compile(r"\s*def\s+(\w+)\s*\(")


@dataclass(frozen=True)
class Refusal:
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


# --- the group's tasks, from the installed task YAMLs ------------------------------------------------
def _yaml_files() -> dict[str, dict]:
    """Every task YAML we ship, parsed with lm-eval's ``!function`` tags dropped (only names are needed)."""
    import yaml

    from culturesafe_ext.plugin import tasks_dir

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    out = {}
    for path in sorted(tasks_dir().rglob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader) or {}
        if isinstance(data, dict):
            out[str(path)] = data
    return out


@lru_cache(maxsize=1)
def _macro_metrics() -> dict[str, set[str]]:
    """group name -> metrics it aggregates as an unweighted mean over its members."""
    out = {}
    for data in _yaml_files().values():
        if "group" in data:
            specs = data.get("aggregate_metric_list") or []
            out[str(data["group"])] = {s["metric"] for s in specs if s.get("weight_by_size") is False}
    return out


@lru_cache(maxsize=1)
def _groups() -> dict[str, list[str]]:
    """group name -> its members (tasks or groups), from every group YAML we ship."""
    groups = {}
    for data in _yaml_files().values():
        if "group" in data and isinstance(data.get("task"), list):
            groups[str(data["group"])] = [t if isinstance(t, str) else t.get("task") for t in data["task"]]
    return groups


def leaf_tasks(group: str) -> list[str]:
    """Every leaf task under ``group`` (recursively); a task name stands for itself."""
    groups = _groups()
    if group not in groups:
        return [group]
    out: list[str] = []
    for member in groups[group]:
        out.extend(leaf_tasks(member))
    return out


# --- finding our code by the source lm-eval logged ----------------------------------------------------
@lru_cache(maxsize=1)
def _functions() -> dict[str, list[Any]]:
    """name -> functions of that name in culturesafe_ext.tasks.* (where every YAML hook lives)."""
    import culturesafe_ext.tasks as tasks_pkg

    found: dict[str, list[Any]] = {}
    for info in pkgutil.iter_modules(tasks_pkg.__path__):
        module = importlib.import_module(f"culturesafe_ext.tasks.{info.name}")
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                found.setdefault(name, []).append(fn)
    return found


def resolve(source: str) -> Any | None:
    """The installed function whose source is exactly ``source`` (as lm-eval logs it), else None."""
    match = _DEF.match(source or "")
    if not match:
        return None
    for fn in _functions().get(match[1], []):
        if inspect.getsource(fn).strip() == source.strip():
            return fn
    return None


def _aggregator(spec: str):
    if spec == "mean":
        from lm_eval.api.metrics import mean

        return mean
    return resolve(spec)


# --- comparing values ----------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Tuples as lists, as they read back from JSON."""
    return json.loads(json.dumps(value))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b


def _as_results(filtered: list) -> list:
    """Logged filtered responses back into what ``process_results`` received: loglikelihood pairs as (float, bool)."""
    out = []
    for item in filtered:
        if (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(x, str) for x in item)
            and item[1] in ("True", "False")
        ):
            try:
                out.append((float(item[0]), item[1] == "True"))
                continue
            except ValueError:
                pass
        out.append(item)
    return out


def _doc_hash(doc: dict) -> str:
    from lm_eval.utils import handle_non_serializable, hash_string

    return hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))


# --- the checks ----------------------------------------------------------------------------------------
def validate(
    submission: Path, groups: tuple[str, ...] = ("adaculturesafe",), allow_bundled: bool = False
) -> list[Refusal]:
    """All refusals for ``submission`` (empty: accepted)."""
    try:
        run = read_run(Path(submission))
    except (FileNotFoundError, ValueError) as err:
        return [Refusal(str(submission), str(err))]
    refusals: list[Refusal] = []
    expected = [t for g in groups for t in leaf_tasks(g)]
    for task in expected:
        if task not in run.task_results:
            refusals.append(Refusal(str(submission), f"task {task!r} of group(s) {', '.join(groups)} is missing"))
    for rf in run.results_files:
        limit = rf.data.get("config", {}).get("limit")
        if limit is not None:
            refusals.append(Refusal(str(rf.path), f"run with --limit {limit}: only complete runs are accepted"))
    judges: set[str] = set()
    for task in run.tasks:
        if task in expected:
            refusals.extend(_check_task(run, task, allow_bundled, judges))
    if len(judges) > 1:
        refusals.append(Refusal(str(submission), f"the safety tasks were judged by different judges: {sorted(judges)}"))
    for rf in run.results_files:
        refusals.extend(_check_groups(rf.path, rf.data))
    return refusals


def _check_task(run: Run, task: str, allow_bundled: bool, judges: set[str]) -> list[Refusal]:
    rf = run.task_results[task]
    where, out = str(rf.path), []
    data, config = rf.data, run.config(task)
    n = data.get("n-samples", {}).get(task, {})
    if n and n.get("effective") != n.get("original"):
        out.append(Refusal(where, f"task {task!r}: {n.get('effective')} of {n.get('original')} docs evaluated"))
    if data.get("versions", {}).get(task) is None:
        out.append(Refusal(where, f"task {task!r}: no task version recorded"))
    metadata = config.get("metadata", {}) or {}
    prefix = "culturax" if task.startswith("culturax_") else "culturesafe"  # each dataset's own metadata keys
    source, revision = metadata.get(f"{prefix}_data"), metadata.get(f"{prefix}_revision")
    if source == "bundled":
        if not allow_bundled:
            out.append(Refusal(where, f"task {task!r}: evaluated on the bundled sample, not the released dataset"))
    elif not source or not revision:
        out.append(
            Refusal(
                where,
                f"task {task!r}: dataset revision not recorded (metadata {prefix}_data={source!r}, "
                f"{prefix}_revision={revision!r}): pass both in --metadata so they are logged",
            )
        )
    samples_path = run.samples_path(task)
    if samples_path is None:
        return [*out, Refusal(where, f"task {task!r}: no samples file (run with --log_samples)")]
    rows = run.samples(task)
    sp = str(samples_path)
    if n and len(rows) != n.get("effective"):
        out.append(Refusal(sp, f"{len(rows)} samples logged, {n.get('effective')} reported"))
    # lm-eval's own hashes: each doc, and the task's samples as a whole
    bad_docs = [r["doc_id"] for r in rows if r.get("doc_hash") != _doc_hash(r["doc"])]
    if bad_docs:
        out.append(Refusal(sp, f"doc_hash does not match the logged doc for doc_id {bad_docs[:5]}"))
    task_hash = data.get("task_hashes", {}).get(task)
    if task_hash is not None:
        from lm_eval.utils import hash_string

        recomputed = hash_string("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
        if recomputed != task_hash:
            out.append(Refusal(sp, f"task_hashes[{task!r}] in {rf.path.name} does not match the samples"))
    # the judge
    if "judge_settings" in (rows[0]["doc"] if rows else {}):
        for r in rows:
            settings = json.loads(r["doc"]["judge_settings"])
            if settings.get("backend") in (None, "none") or not settings.get("model"):
                out.append(
                    Refusal(sp, f"doc_id {r['doc_id']}: no judge identified (backend {settings.get('backend')!r})")
                )
                break
            judges.add(f"{settings['backend']}:{settings['model']}:{settings.get('rubric_version')}")
    out.extend(_check_metrics(rf.path, task, config, data.get("results", {}).get(task, {}), rows, sp))
    return out


def _check_metrics(results_path: Path, task: str, config: dict, reported: dict, rows: list[dict], sp: str):
    """Per-sample metrics from the logged responses, then each aggregate from them, against the report."""
    out = []
    process = resolve(config.get("process_results", ""))
    if process is None:
        return [Refusal(sp, f"task {task!r}: its process_results is not the installed culturesafe's (other version?)")]
    for r in rows:
        recomputed = _plain(process(r["doc"], _as_results(r["filtered_resps"])))
        for metric, value in recomputed.items():
            if not same(value, r.get(metric)):
                out.append(
                    Refusal(
                        sp, f"doc_id {r['doc_id']}: {metric} logged {r.get(metric)!r}, {value!r} from its responses"
                    )
                )
                break
    for spec in config.get("metric_list", []):
        metric = spec["metric"]
        aggregate = _aggregator(spec.get("aggregation", "mean"))
        if aggregate is None:
            out.append(Refusal(str(results_path), f"task {task!r}: unknown aggregation for {metric!r}"))
            continue
        keys = [k for k in reported if k.startswith(f"{metric},") and "_stderr" not in k]
        for key in keys:
            filt = key.split(",", 1)[1]
            values = [r[metric] for r in rows if r.get("filter", "none") == filt and metric in r]
            value = aggregate([tuple(v) if isinstance(v, list) else v for v in values])
            if not same(float(value), reported[key]):
                out.append(
                    Refusal(
                        str(results_path),
                        f"task {task!r}: {key} reported {reported[key]!r}, {float(value)!r} recomputed from {sp}",
                    )
                )
    return out


def _check_groups(path: Path, data: dict) -> list[Refusal]:
    """A group row (macro mean, lm-eval's weight_by_size: false) equals the mean of its subtasks' rows."""
    out = []
    results = data.get("results", {})
    for group, members in data.get("group_subtasks", {}).items():
        if not members or group not in results:
            continue
        macro = _macro_metrics().get(group, set())
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
