"""THE one reader of lm-eval output folders (``--output_path ... --log_samples``).

lm-eval 0.4.13 writes, per model, ``results_<date_id>.json`` and one ``samples_<task>_<date_id>.jsonl``
per task with the same ``date_id``. Analysis, leaderboard and ``culturesafe judge rejudge`` all read runs here,
so a format change is handled in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# lm-eval's date_id: datetime.now().isoformat() with ":" replaced by "-" (no "_" inside).
_SAMPLES_NAME = re.compile(r"samples_(?P<task>.+)_(?P<date_id>[^_]+)\.jsonl")
_RESULTS_NAME = re.compile(r"results_(?P<date_id>[^_]+)\.json")


@dataclass
class ResultsFile:
    """One ``results_*.json`` and the samples files written with it (same date_id)."""

    path: Path
    data: dict[str, Any]
    samples_files: dict[str, Path] = field(default_factory=dict)

    @property
    def date_id(self) -> str:
        return _RESULTS_NAME.fullmatch(self.path.name)["date_id"]


@dataclass
class Run:
    """Everything one model's output folder holds: the results files and each task's samples.

    When a task was evaluated in several results files (the same folder used twice), the latest wins;
    ``superseded`` lists what was overridden so it can be reported, not silently dropped.
    """

    root: Path
    results_files: list[ResultsFile]
    task_results: dict[str, ResultsFile] = field(default_factory=dict)  # task -> the file that has it
    superseded: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The model as lm-eval names it (``model_name``), else the folder name."""
        for rf in reversed(self.results_files):
            name = rf.data.get("model_name") or rf.data.get("config", {}).get("model_args")
            if name:
                return str(name)
        return self.root.name

    @property
    def tasks(self) -> list[str]:
        return sorted(self.task_results)

    def results(self, task: str) -> dict[str, Any]:
        """lm-eval's aggregated metrics of a task (``{"acc,none": ..., "alias": ...}``)."""
        return self.task_results[task].data.get("results", {}).get(task, {})

    def config(self, task: str) -> dict[str, Any]:
        return self.task_results[task].data.get("configs", {}).get(task, {})

    def samples_path(self, task: str) -> Path | None:
        return self.task_results[task].samples_files.get(task)

    def samples(self, task: str) -> list[dict[str, Any]]:
        path = self.samples_path(task)
        if path is None:
            raise FileNotFoundError(
                f"{self.task_results[task].path}: task {task!r} has no samples file beside it: "
                "run lm_eval with --log_samples"
            )
        return read_jsonl(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a bad line is an error naming the file and line."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {n}: not JSON ({err.msg})") from None
    return rows


def samples_task(path: Path) -> str | None:
    """The task name in ``samples_<task>_<date_id>.jsonl``, None for another file."""
    match = _SAMPLES_NAME.fullmatch(path.name)
    return match["task"] if match else None


def read_results_files(root: Path) -> list[ResultsFile]:
    """Every ``results_*.json`` under ``root`` (oldest first) with its samples files."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    out = []
    for path in sorted(root.rglob("results_*.json"), key=lambda p: p.name):
        if not _RESULTS_NAME.fullmatch(path.name):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
        rf = ResultsFile(path, data)
        for sample_path in path.parent.glob(f"samples_*_{rf.date_id}.jsonl"):
            task = samples_task(sample_path)
            if task:
                rf.samples_files[task] = sample_path
        out.append(rf)
    return out


def read_run(root: Path) -> Run:
    """One model's lm-eval output folder (the ``--output_path`` or the model sub-folder in it)."""
    files = read_results_files(root)
    if not files:
        raise FileNotFoundError(f"{root}: no results_*.json under it (is it an lm_eval --output_path folder?)")
    models = sorted({str(rf.data.get("model_name")) for rf in files})
    if len(models) > 1:
        raise ValueError(
            f"{root}: holds runs of {len(models)} models ({', '.join(models)}): pass each model's sub-folder "
            "as its own RUN_DIR"
        )
    run = Run(Path(root), files)
    for rf in files:  # oldest first: later files override
        for task in rf.data.get("results", {}):
            if task in rf.data.get("group_subtasks", {}) and rf.data["group_subtasks"][task]:
                continue  # a group row: its subtasks carry the samples
            if task in run.task_results:
                run.superseded.append(f"{task}: {run.task_results[task].path.name} superseded by {rf.path.name}")
            run.task_results[task] = rf
    return run


def read_samples(run_dir: Path, glob: str = "samples_*.jsonl") -> dict[str, list[dict[str, Any]]]:
    """task name -> logged samples, the latest samples file per task, for files matching ``glob``.

    Works without a results file (e.g. a run killed after logging samples).
    """
    by_task: dict[str, Path] = {}
    for path in sorted(Path(run_dir).rglob(glob), key=lambda p: p.name):
        task = samples_task(path)
        if task:
            by_task[task] = path  # sorted by date_id suffix within a task: the last one wins
    if not by_task:
        raise FileNotFoundError(f"no {glob} under {run_dir}: run lm_eval with --log_samples")
    return {task: read_jsonl(path) for task, path in sorted(by_task.items())}


def model_args_of(results: dict) -> dict[str, Any]:
    """The run's ``--model_args`` as a dict (lm-eval records the CLI string, or a dict from Python)."""
    args = results.get("config", {}).get("model_args") or {}
    if isinstance(args, str):
        from lm_eval.utils import simple_parse_args_string

        args = simple_parse_args_string(args)
    return dict(args)


def metric_value(value: Any) -> float | None:
    """A logged per-sample metric as a number: plain numbers, ``[key, value]`` pairs, None stays None."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
