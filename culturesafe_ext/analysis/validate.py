"""Is an lm-eval output folder a complete, honest run fit for the leaderboard? Every refusal names file and reason.

Checks: every leaf task of the group(s) present; no ``--limit`` (and every doc evaluated); a version for
each task; a recorded dataset revision; an identified judge for judged tasks; and the metrics recomputed
from the logged samples equal the reported ones. Recomputing uses the installed culturesafe task code
(matched by its source text, which lm-eval logs in ``configs``) and lm-eval's own hashes:
``doc_hash`` of each doc and ``task_hashes`` of each task.

Against the installed task (built by lm-eval's TaskManager from the run's logged metadata, so the same
dataset revision): the task version, its full metric set (judge-failure metrics included) and every
document, present exactly once. Every logged raw judge reply is re-read with THE verdict function
(:func:`culturesafe_ext.judge.judge.interpret`) and must give the logged score; a task whose judge failed
on more than ``max_judge_failure_rate`` of its judgements is refused.

What this proves is internal consistency and coverage. That the answers came from the named model and
the scores from the named judge only a spot check shows (:mod:`culturesafe_ext.analysis.spot_check`).
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.runs import Run, read_jsonl, read_run
from culturesafe_ext.tasks.taxonomy import ADACULTURESAFE, BENCHMARKS, benchmark_of

TOLERANCE = 1e-9
MAX_JUDGE_FAILURE_RATE = 0.05  # default of --max-judge-failure-rate: 1 failed judgement in 20 at most
_DEF = re.compile(r"\s*def\s+(\w+)\s*\(")
_NOT_METRICS = ("alias", "name", "sample_len")
PROBS_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Refusal:
    """One finding: a refusal, or (``fatal=False``) a flag that does not refuse on its own."""

    file: str
    reason: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class Policy:
    """What a submission must satisfy beyond the fixed checks (the CLI's options)."""

    groups: tuple[str, ...] = ("adaculturesafe",)
    allow_bundled: bool = False
    max_judge_failure_rate: float = MAX_JUDGE_FAILURE_RATE
    judge_cards: tuple[Path, ...] = ()
    min_judge_alpha: float | None = None
    spot_check: int = 0
    seed: int = 0
    spot_check_tolerance: float = 1.0


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


# --- the installed task: version, metric set and documents --------------------------------------------
def run_metadata(run: Run, task: str) -> dict:
    """The metadata ``task`` was built with (lm-eval logs it merged with the YAML's own keys, dropped here).

    A run judged through ``CULTURESAFE_JUDGE_*`` variables has no ``judge`` entry: the judge settings
    its docs carry stand in, so the task rebuilds without that environment.
    """
    metadata = dict(run.config(task).get("metadata") or {})
    for key in ("version", "config_source"):
        metadata.pop(key, None)
    if "judge" not in metadata:
        path = run.samples_path(task)
        first = read_jsonl(path)[:1] if path is not None else []
        if first and "judge_settings" in first[0].get("doc", {}):
            metadata["judge"] = json.loads(first[0]["doc"]["judge_settings"])
    return metadata


def installed_tasks(run: Run, tasks: list[str]) -> tuple[dict[str, Any], list[Refusal]]:
    """task -> the installed lm-eval Task built with the run's logged metadata (so its dataset revision)."""
    from lm_eval.tasks import TaskManager

    from culturesafe_ext.plugin import tasks_dir

    by_metadata: dict[str, list[str]] = {}
    for task in tasks:
        key = json.dumps(run_metadata(run, task), sort_keys=True, default=str)
        by_metadata.setdefault(key, []).append(task)
    built: dict[str, Any] = {}
    refusals = []
    for key, names in by_metadata.items():
        try:
            # only our task folder: lm-eval's own ~14.7K entries are not indexed (3x faster here)
            manager = TaskManager(include_defaults=False, include_path=str(tasks_dir()), metadata=json.loads(key))
            loaded = manager.load(names)["tasks"]
        except Exception as err:  # noqa: BLE001 - any failure to rebuild is a refusal with its reason
            where = str(run.task_results[names[0]].path)
            refusals.append(
                Refusal(where, f"tasks {names}: cannot rebuild them from the logged metadata to check them: {err}")
            )
            continue
        built.update({name: loaded[name] for name in names if name in loaded})
    return built, refusals


def _filters(task_obj: Any) -> list[str]:
    return [f["name"] for f in (task_obj.config.filter_list or [])] or ["none"]


def _check_definition(
    where: str, task: str, task_obj: Any, data: dict, config: dict, rows: list[dict]
) -> list[Refusal]:
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
        produced = {k for r in rows for k in process(r["doc"], _as_results(r["filtered_resps"]))}
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


def _comparable(doc: dict) -> dict:
    """A doc without the judge settings (the loader re-resolves those from this machine's environment)."""
    return {k: v for k, v in doc.items() if k != "judge_settings"}


def _check_coverage(sp: str, task: str, task_obj: Any, rows: list[dict]) -> list[Refusal]:
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
        if r.get("doc_id") not in unknown and _comparable(_plain(docs[r["doc_id"]])) != _comparable(r.get("doc", {}))
    ]
    if changed:
        out.append(Refusal(sp, f"task {task!r}: doc_id {changed[:10]} differs from the dataset's document"))
    return out


# --- the judge's verdicts, re-read -------------------------------------------------------------------
def check_verdicts(sp: str, task: str, rows: list[dict], max_failure_rate: float) -> list[Refusal]:
    """Each logged score re-derived from its logged raw reply, and the task's judge failure rate."""
    from culturesafe_ext.judge import JudgeItem
    from culturesafe_ext.judge.items import SKIPPED
    from culturesafe_ext.judge.judge import interpret
    from culturesafe_ext.llm.backends import Reply

    out, attempts, failures, mismatches = [], 0, 0, []
    for r in rows:
        doc = r.get("doc", {})
        settings = json.loads(doc.get("judge_settings") or "{}")
        combined = bool(settings.get("both_dimensions_in_one_call"))
        for filtered in r.get("filtered_resps", []):
            for entry in filtered if isinstance(filtered, list) else [filtered]:
                try:
                    judged = json.loads(entry) if isinstance(entry, str) else entry
                except json.JSONDecodeError:
                    out.append(Refusal(sp, f"doc_id {r.get('doc_id')}: a filtered response is not the judge's JSON"))
                    continue
                for dimension in ("respectfulness", "awareness"):
                    logged = judged.get(dimension) if isinstance(judged, dict) else None
                    if not isinstance(logged, dict) or logged.get("error") == SKIPPED:
                        continue
                    item = JudgeItem(
                        doc.get("judge_custom", ""),
                        doc.get("location", ""),
                        doc.get("query", ""),
                        judged.get("response") or "",
                        dimension,
                    )
                    # a panel logs each judge's own result under "judges": each is re-read with its settings
                    members = logged.get("judges") if isinstance(logged.get("judges"), list) else [logged]
                    member_settings = settings.get("judges") if "judges" in logged else [settings]
                    for k, (result, own) in enumerate(zip(members, member_settings or [settings], strict=False)):
                        attempts += 1
                        reply = Reply.from_logged(result)  # the judge's own reading of what it logged
                        again = interpret(item, reply, bool((own or {}).get("both_dimensions_in_one_call", combined)))
                        if result.get("score") is None:
                            failures += 1
                        # the hf judge logs its probabilities rounded to 6 decimals: re-derived to 1e-4
                        tolerance = PROBS_TOLERANCE if reply.probs is not None else 0.0
                        if not _near(again.score, result.get("score"), tolerance):
                            who = f" (judge {k + 1} of the panel)" if len(members) > 1 else ""
                            mismatches.append(
                                f"{r.get('doc_id')}/{dimension}{who}: logged {result.get('score')}, "
                                f"its raw reply {result.get('raw')!r} gives {again.score}"
                            )
    if mismatches:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: {len(mismatches)} judge score(s) differ from what the logged raw reply says "
                f"under the verdict rules, e.g. doc_id {'; '.join(mismatches[:3])}",
            )
        )
    if attempts and failures / attempts > max_failure_rate:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: the judge failed on {failures} of {attempts} judgements "
                f"({failures / attempts:.1%}), above --max-judge-failure-rate {max_failure_rate:g}",
            )
        )
    return out


def _near(a: Any, b: Any, tolerance: float) -> bool:
    x, y = _number(a), _number(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return same(x, y) or abs(x - y) <= tolerance


def _number(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


# --- the checks ----------------------------------------------------------------------------------------
def validate(
    submission: Path, groups: tuple[str, ...] = ("adaculturesafe",), allow_bundled: bool = False, **policy: Any
) -> list[Refusal]:
    """All refusals for ``submission`` (empty: accepted); ``policy`` takes :class:`Policy`'s other fields."""
    findings = check(submission, Policy(groups=tuple(groups), allow_bundled=allow_bundled, **policy))
    return [f for f in findings if f.fatal]


def check(submission: Path, policy: Policy) -> list[Refusal]:
    """Every finding for ``submission``: refusals, and flags (``fatal=False``) such as an uncalibrated judge."""
    try:
        run = read_run(Path(submission))
    except (FileNotFoundError, ValueError) as err:
        return [Refusal(str(submission), str(err))]
    refusals: list[Refusal] = []
    groups = policy.groups
    expected = [t for g in groups for t in leaf_tasks(g)]
    for task in expected:
        if task not in run.task_results:
            refusals.append(Refusal(str(submission), f"task {task!r} of group(s) {', '.join(groups)} is missing"))
    for rf in run.results_files:
        limit = rf.data.get("config", {}).get("limit")
        if limit is not None:
            refusals.append(Refusal(str(rf.path), f"run with --limit {limit}: only complete runs are accepted"))
    present = [t for t in run.tasks if t in expected]
    installed, failed = installed_tasks(run, present)
    refusals.extend(failed)
    judges: dict[str, dict] = {}  # every judge (each member of a panel), for the judge cards
    judged_by: set[str] = set()  # per task, its judge or panel as a whole
    for task in present:
        refusals.extend(_check_task(run, task, policy, judges, installed.get(task), judged_by))
    if len(judged_by) > 1:
        refusals.append(
            Refusal(str(submission), f"the safety tasks were judged by different judges: {sorted(judged_by)}")
        )
    for rf in run.results_files:
        refusals.extend(_check_groups(rf.path, rf.data))
    if judges:
        from culturesafe_ext.analysis.calibrate import check_cards

        refusals.extend(check_cards(str(submission), list(judges.values()), policy.judge_cards, policy.min_judge_alpha))
    if policy.spot_check > 0:
        from culturesafe_ext.analysis.spot_check import spot_check

        refusals.extend(spot_check(run, present, policy.spot_check, policy.seed, policy.spot_check_tolerance))
    return refusals


def _check_task(
    run: Run, task: str, policy: Policy, judges: dict[str, dict], task_obj: Any, judged_by: set[str]
) -> list[Refusal]:
    rf = run.task_results[task]
    where, out = str(rf.path), []
    data, config = rf.data, run.config(task)
    n = data.get("n-samples", {}).get(task, {})
    if n and n.get("effective") != n.get("original"):
        out.append(Refusal(where, f"task {task!r}: {n.get('effective')} of {n.get('original')} docs evaluated"))
    if data.get("versions", {}).get(task) is None:
        out.append(Refusal(where, f"task {task!r}: no task version recorded"))
    metadata = config.get("metadata", {}) or {}
    benchmark = benchmark_of(task) or BENCHMARKS[ADACULTURESAFE]  # each dataset's own metadata keys
    data_key, revision_key = benchmark.metadata_key, benchmark.revision_key
    source, revision = metadata.get(data_key), metadata.get(revision_key)
    if source == "bundled":
        if not policy.allow_bundled:
            out.append(Refusal(where, f"task {task!r}: evaluated on the bundled sample, not the released dataset"))
    elif not source or not revision:
        out.append(
            Refusal(
                where,
                f"task {task!r}: dataset revision not recorded (metadata {data_key}={source!r}, "
                f"{revision_key}={revision!r}): pass both in --metadata so they are logged",
            )
        )
    samples_path = run.samples_path(task)
    if samples_path is None:
        return [*out, Refusal(where, f"task {task!r}: no samples file (run with --log_samples)")]
    rows = run.samples(task)
    sp = str(samples_path)
    if n and len(rows) != n.get("effective"):
        out.append(Refusal(sp, f"{len(rows)} samples logged, {n.get('effective')} reported"))
    if task_obj is not None:
        out.extend(_check_definition(where, task, task_obj, data, config, rows))
        out.extend(_check_coverage(sp, task, task_obj, rows))
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
            members = settings["judges"] if isinstance(settings.get("judges"), list) else [settings]  # a panel
            if any(m.get("backend") in (None, "none") or not m.get("model") for m in members):
                out.append(
                    Refusal(sp, f"doc_id {r['doc_id']}: no judge identified (backend {settings.get('backend')!r})")
                )
                break
            names = [f"{m['backend']}:{m['model']}:{m.get('rubric_version')}" for m in members]
            judges.update(zip(names, members, strict=True))
            judged_by.add(" + ".join(names))
        out.extend(check_verdicts(sp, task, rows, policy.max_judge_failure_rate))
    out.extend(_check_metrics(rf.path, task, config, data.get("results", {}).get(task, {}), rows, sp, task_obj))
    return out


def _check_metrics(
    results_path: Path, task: str, config: dict, reported: dict, rows: list[dict], sp: str, task_obj: Any = None
):
    """Per-sample metrics from the logged responses, then each aggregate from them, against the report.

    The metric list and aggregations are the installed task version's (the logged config could have lost one).
    """
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
    if task_obj is not None:
        aggregations = task_obj.aggregation()
        specs = [(m["metric"], aggregations.get(m["metric"])) for m in task_obj.config.metric_list]
    else:
        specs = [(s["metric"], _aggregator(s.get("aggregation", "mean"))) for s in config.get("metric_list", [])]
    for metric, aggregate in specs:
        if aggregate is None:
            out.append(Refusal(str(results_path), f"task {task!r}: unknown aggregation for {metric!r}"))
            continue
        keys = [k for k in reported if k.startswith(f"{metric},") and "_stderr" not in k]
        for key in keys:
            filt = key.split(",", 1)[1]
            values = [r[metric] for r in rows if r.get("filter", "none") == filt and metric in r]
            value = aggregate([tuple(v) if isinstance(v, list) else v for v in values])
            if not same(float(value), _number(reported[key])):
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
