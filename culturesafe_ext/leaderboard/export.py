"""``culturesafe leaderboard export RUN_DIR --out DIR``: a run as the Hub's Eval Results files for a model repo.

The Hugging Face Hub reads evaluation scores from ``.eval_results/*.yaml`` in a model repo and shows them on
the model page and on the benchmark dataset's leaderboard (https://huggingface.co/docs/hub/eval-results).
This writes one file per benchmark in the run (``.eval_results/adaculturesafe.yaml``,
``.eval_results/culturax.yaml``), with huggingface_hub's own :class:`~huggingface_hub.EvalResultEntry`:
one entry per task and group with its headline metric (:data:`HEADLINE`), the dataset id and revision
the run logged, and the run's date. The format has no field for the judge: its identity and its
failure count go into each entry's ``notes``, with the metric's name. Open a pull request on the model
repo with the folder (``huggingface-cli upload MODEL DIR/.eval_results .eval_results --create-pr``).

A run on the bundled sample or a local folder, or with ``--limit``, is refused: an entry names a Hub dataset
and stands for the whole of it. Validate the run first (``culturesafe leaderboard validate``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.calibrate import judge_name
from culturesafe_ext.analysis.runs import ResultsFile, Run, read_run
from culturesafe_ext.tasks.taxonomy import benchmark_of

FOLDER = ".eval_results"
# The metric an entry reports, the first of these a task or group row has: CulturaX's Avg = (WR + TI - SS) / 3;
# knowledge accuracy averaged per description first (as the paper does); the judge's respectfulness (1..10).
HEADLINE = ("avg", "circular_acc_by_description", "acc_by_description", "respectfulness")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _rows(run: Run) -> dict[str, tuple[ResultsFile, dict[str, Any]]]:
    """Every task and group row of the run (the latest results file wins), ours only."""
    rows = {}
    for rf in run.results_files:  # oldest first
        for name, row in rf.data.get("results", {}).items():
            if benchmark_of(name) is not None:
                rows[name] = (rf, row)
    return rows


def _headline(row: dict[str, Any]) -> tuple[str, float] | None:
    for metric in HEADLINE:
        for key, value in row.items():
            if key.split(",")[0] == metric and "_stderr" not in key and isinstance(value, (int, float)):
                return key, float(value)
    return None


def _leaves(name: str, rf: ResultsFile) -> list[str]:
    members = rf.data.get("group_subtasks", {}).get(name) or []
    return [leaf for m in members for leaf in _leaves(m, rf)] if members else [name]


def _dataset(run: Run, rf: ResultsFile, name: str, leaves: list[str]) -> tuple[str, str | None]:
    """The Hub dataset id and revision the row's tasks were evaluated on, as logged in their metadata."""
    benchmark = benchmark_of(name)
    found = set()
    for leaf in leaves:
        metadata = rf.data.get("configs", {}).get(leaf, {}).get("metadata") or {}
        source = metadata.get(benchmark.metadata_key) or benchmark.hub_id
        if not _HUB_ID.fullmatch(str(source)) or Path(str(source)).exists():
            raise ValueError(
                f"{rf.path}: task {leaf!r}: metadata {benchmark.metadata_key}={source!r} is not a Hub dataset: "
                "an Eval Results entry names the released dataset (evaluate on its Hub id and revision)"
            )
        found.add((str(source), metadata.get(benchmark.revision_key)))
    if len(found) != 1:
        raise ValueError(f"{rf.path}: the tasks of {name!r} were evaluated on different datasets: {sorted(found)}")
    return found.pop()


def _judges(run: Run, leaves: list[str]) -> list[str]:
    """Each judge of the row's tasks (each member of a panel), from the settings the samples carry."""
    names: list[str] = []
    for leaf in leaves:
        if leaf not in run.task_results or run.samples_path(leaf) is None:
            continue
        rows = run.samples(leaf)[:1]
        raw = rows[0].get("doc", {}).get("judge_settings") if rows else None
        if raw:
            settings = json.loads(raw)
            members = settings["judges"] if isinstance(settings.get("judges"), list) else [settings]
            names.extend(n for n in map(judge_name, members) if n not in names)
    return names


def _notes(run: Run, rf: ResultsFile, key: str, leaves: list[str]) -> str:
    parts = [f"metric {key}", f"lm-eval {rf.data.get('lm_eval_version', '?')}"]
    judges = _judges(run, leaves)
    if judges:
        results = [run.results(leaf) for leaf in leaves if leaf in run.task_results]
        failures = sum(int(r.get("judge_failures,judge", 0)) for r in results)
        judged = sum(int(r.get("n_judged,judge", 0)) for r in results)
        parts.append(f"judge {' + '.join(judges)}")
        parts.append(f"judge failures {failures} of {failures + judged} judgements")
    return "; ".join(parts)


def _date(rf: ResultsFile) -> str:
    """lm-eval's date_id (``2026-01-01T00-00-00.000000``) as ISO-8601."""
    day, _, time = rf.date_id.partition("T")
    return f"{day}T{time.split('.')[0].replace('-', ':')}" if time else day


def entries(run_dir: Path, source_url: str | None = None, source_name: str | None = None) -> dict[str, list]:
    """benchmark -> its :class:`huggingface_hub.EvalResultEntry` list, one per task and group with a headline."""
    from huggingface_hub import EvalResultEntry

    run = read_run(Path(run_dir))
    for rf in run.results_files:
        limit = rf.data.get("config", {}).get("limit")
        if limit is not None:
            raise ValueError(f"{rf.path}: run with --limit {limit}: an Eval Results entry stands for the whole dataset")
    out: dict[str, list] = {}
    for name, (rf, row) in sorted(_rows(run).items()):
        headline = _headline(row)
        if headline is None:
            continue
        key, value = headline
        leaves = _leaves(name, rf)
        dataset_id, revision = _dataset(run, rf, name, leaves)
        entry = EvalResultEntry(
            dataset_id=dataset_id,
            task_id=name,
            value=value,
            dataset_revision=revision,
            date=_date(rf),
            source_url=source_url,
            source_name=source_name,
            notes=_notes(run, rf, key, leaves),
        )
        out.setdefault(benchmark_of(name).name, []).append(entry)
    if not out:
        raise ValueError(f"{run_dir}: no culturesafe task or group with a headline metric {HEADLINE} in its results")
    return out


def export(
    run_dir: Path, out_dir: Path, source_url: str | None = None, source_name: str | None = None
) -> dict[Path, int]:
    """Write ``out_dir/.eval_results/<benchmark>.yaml`` for each benchmark of the run: path -> entries written."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    by_benchmark = entries(run_dir, source_url, source_name)  # every refusal before anything is written
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for benchmark, items in by_benchmark.items():
        path = folder / f"{benchmark}.yaml"
        text = yaml.safe_dump(eval_result_entries_to_yaml(items), sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        written[path] = len(items)
    return written


def run(args: argparse.Namespace) -> int:
    """``culturesafe leaderboard export``: write the files and list them."""
    for path, n in export(args.run_dir, args.out, args.source_url, args.source_name).items():
        print(f"{path}: {n} entries")
    return 0
