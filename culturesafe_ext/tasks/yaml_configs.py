"""The task-YAML writer that both ``lm_eval_tasks/*/_generate_configs.py`` scripts run (lm-eval's tasks/mmlu style).

Why one place: the benchmarks differ only in their units (countries, domains), their task names and
their dataset keys (all from :mod:`culturesafe_ext.tasks.taxonomy` and the schemas); the file layout
(one YAML per unit including the family's template, one group YAML per family) and the command line
(``--dataset DIR`` or a comma-separated list, ``--out``) are one thing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import yaml

METADATA = {"version": 1.0}


def dump(path: Path, data: dict) -> None:
    """One YAML file, keys in the order given, non-ASCII names kept readable."""
    with path.open("w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)


def write_family(
    out: Path,
    group: str,
    template: str,
    alias: str,
    units: list[tuple[str, str, dict]],
    metrics: list[str],
    weight_by_size: bool,
) -> list[Path]:
    """One family: a task YAML per ``(unit, task name, dataset_kwargs)`` and the group YAML over them.

    Each task file includes the family's ``template`` and is aliased ``"<unit> (<alias>)"``; the group
    aggregates ``metrics`` over its tasks (``weight_by_size``: a mean over samples, else over tasks).
    """
    written = []
    for unit, task, dataset_kwargs in units:
        path = out / f"{task}.yaml"
        dump(
            path,
            {"include": template, "task": task, "task_alias": f"{unit} ({alias})", "dataset_kwargs": dataset_kwargs},
        )
        written.append(path)
    path = out / f"_{group}.yaml"
    dump(
        path,
        {
            "group": group,
            "task": [task for _, task, _ in units],
            "aggregate_metric_list": [{"metric": m, "weight_by_size": weight_by_size} for m in metrics],
            "metadata": dict(METADATA),
        },
    )
    written.append(path)
    return written


def write_top_group(out: Path, group: str, tasks: list[str]) -> Path:
    """A benchmark's top group YAML over its family groups."""
    path = out / f"_{group}.yaml"
    dump(path, {"group": group, "task": tasks, "metadata": dict(METADATA)})
    return path


def main(
    doc: str,
    units_flag: str,
    units_help: str,
    dataset_help: str,
    from_dataset: Callable[[Path], list[str]],
    write: Callable[[list[str], Path], list[Path]],
    out: Path,
    argv: list[str] | None = None,
) -> None:
    """A generator's command line: units from ``--dataset DIR`` or ``--<units_flag> "a,b"``; prints each file."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help=dataset_help)
    source.add_argument(f"--{units_flag}", help=units_help)
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args(argv)
    if args.dataset:
        units = from_dataset(args.dataset)
    else:
        units = [u.strip() for u in getattr(args, units_flag).split(",") if u.strip()]
    for path in write(units, args.out):
        print(path)
