"""A submission's tasks: the groups it must cover (from our task YAMLs) and its tasks rebuilt as logged.

The rebuild uses lm-eval's TaskManager over our task folder with the run's logged metadata, so the same
dataset revision and judge settings; the checks compare the submission against what that gives.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from culturesafe_ext.analysis.runs import Run, read_jsonl
from culturesafe_ext.leaderboard.refusals import Refusal


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
def macro_metrics() -> dict[str, set[str]]:
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
