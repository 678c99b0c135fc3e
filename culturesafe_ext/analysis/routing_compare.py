"""Base vs fixed vs learned vs oracle routing, per country, from lm-eval output folders.

Reads what lm-eval wrote (``results_*.json``, and ``samples_*.jsonl`` when ``--log_samples`` was on)
for several runs of the same tasks, and returns one JSON-able table (format :data:`FORMAT`):

- ``table[family][country][label]`` = ``{"value", "stderr", "n"}`` for the chosen metric (``acc,none``);
- ``macro[family][label]`` = mean over the countries every run has (with ``n_countries``);
- ``oracle_minus_learned[family]`` = per country and macro, when one run is ``routing=oracle`` and one
  ``routing=learned`` (from the run's model info, else from its label);
- ``routing_accuracy[label]`` = routed requests whose adapter is the document's own country, from the
  route tags ``hf-router`` logs in the samples (``correct``, ``n``, per country);
- ``router`` = the router's own held-out evaluation (``router_eval.json``): from ``--router``, else from the
  ``router=`` model arg of the ``routing=learned`` run when that folder has one.

Runs are read with the analysis run reader (:mod:`culturesafe_ext.analysis.runs`); :func:`run_entry` (one run)
and :func:`combine` (the runs together) are what the analysis report's routing section uses.

``culturesafe analyze routing --run base=out/base --run learned=out/learned ... --out cmp.json``
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.runs import Run, model_args_of, read_run
from culturesafe_ext.data.adaculturesafe_schema import slug
from culturesafe_ext.data.manifests import ROUTE_KEY, ROUTER_EVAL_FILE

FORMAT = "culturesafe.routing_compare.v1"


def _task_country(config: dict) -> str | None:
    name = (config.get("dataset_kwargs") or {}).get("culturesafe_config", "")
    kind, _, country = name.partition("_")
    return country or None


def routing_mode(results: dict, label: str) -> str:
    """``routing`` as hf-router reported it, else the label (a plain ``hf`` run is the base model)."""
    return str(results.get("config", {}).get("routing") or label)


def route_accuracy(samples: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """How many logged requests went to their document's own country's adapter (``samples``: per task)."""
    per_country: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for rows in samples:
        for sample in rows:
            country = slug(sample["doc"].get("country", ""))
            for gen_args in sample.get("arguments", {}).values():
                tags = [a for a in gen_args.values() if isinstance(a, dict) and ROUTE_KEY in a]
                for tag in tags:
                    per_country[country][0] += tag[ROUTE_KEY] == country
                    per_country[country][1] += 1
    correct = sum(c for c, _ in per_country.values())
    n = sum(m for _, m in per_country.values())
    return {
        "correct": correct,
        "n": n,
        "accuracy": correct / n if n else None,
        "by_country": {k: {"correct": c, "n": m} for k, (c, m) in sorted(per_country.items())},
    }


def load_router_eval(router_dir: str | Path) -> dict[str, Any]:
    """The router's held-out evaluation that ``culturesafe train router`` wrote beside it."""
    path = Path(router_dir) / ROUTER_EVAL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no router evaluation (written by `culturesafe train router`)")
    return json.loads(path.read_text(encoding="utf-8"))


def run_entry(run: Run, label: str, metric: str = "acc,none") -> dict[str, Any]:
    """One run's share of the comparison: its routing mode, the metric per (family, country), its routes.

    JSON-able, so the analysis report stores it per run and :func:`combine` joins the runs later.
    """
    latest = run.results_files[-1].data
    cells: dict[str, dict[str, dict]] = defaultdict(dict)
    samples = []
    metric_name, _, filt = metric.partition(",")
    for task in run.tasks:
        country = _task_country(run.config(task))
        values = run.results(task)
        if country is None or metric not in values:
            continue
        family = task[: -len(country) - 1] if task.endswith("_" + country) else task
        stderr = values.get(f"{metric_name}_stderr,{filt}")
        cells[family][country] = {
            "value": values[metric],
            "stderr": stderr if isinstance(stderr, int | float) else None,
            "n": (run.task_results[task].data.get("n-samples", {}).get(task) or {}).get("effective"),
        }
        if run.samples_path(task):
            samples.append(run.samples(task))
    router_dir = model_args_of(latest).get("router")
    return {
        "dir": str(run.root),
        "model": latest.get("config", {}).get("model"),
        "routing": routing_mode(latest, label),
        "router_dir": str(router_dir) if router_dir else None,
        "cells": {f: dict(sorted(c.items())) for f, c in cells.items()},
        "routing_accuracy": route_accuracy(samples) if samples else None,
    }


def combine(entries: dict[str, dict[str, Any]], metric: str = "acc,none", router: dict | None = None) -> dict:
    """The comparison (format :data:`FORMAT`) of labelled :func:`run_entry` results."""
    table: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for label, entry in entries.items():
        for family, by_country in entry["cells"].items():
            for country, cell in by_country.items():
                table[family][country][label] = cell
    modes = {label: entry["routing"] for label, entry in entries.items()}
    macro: dict[str, dict[str, Any]] = {}
    gaps: dict[str, dict[str, Any]] = {}
    oracle = next((k for k, m in modes.items() if m == "oracle"), None)
    learned = next((k for k, m in modes.items() if m == "learned"), None)
    for family, by_country in table.items():
        shared = sorted(c for c, row in by_country.items() if set(row) == set(entries))
        macro[family] = {
            label: {
                "value": sum(by_country[c][label]["value"] for c in shared) / len(shared) if shared else math.nan,
                "n_countries": len(shared),
            }
            for label in entries
        }
        if oracle and learned:
            per = {
                c: row[oracle]["value"] - row[learned]["value"]
                for c, row in by_country.items()
                if oracle in row and learned in row
            }
            gaps[family] = {"by_country": per, "macro": sum(per.values()) / len(per) if per else None}
    return {
        "format": FORMAT,
        "metric": metric,
        "runs": {label: {"dir": entry["dir"], "routing": entry["routing"]} for label, entry in entries.items()},
        "table": {f: dict(sorted(c.items())) for f, c in table.items()},
        "macro": macro,
        "oracle_minus_learned": gaps,
        "routing_accuracy": {k: e["routing_accuracy"] for k, e in entries.items() if e["routing_accuracy"]},
        "router": router,
    }


def compare(runs: dict[str, str | Path], metric: str = "acc,none", router_dir: str | Path | None = None) -> dict:
    """The comparison table of labelled lm-eval output folders (see the module docstring).

    Without ``router_dir``, the router recorded in a ``routing=learned`` run's model args is used when its
    ``router_eval.json`` is there.
    """
    entries = {label: run_entry(read_run(Path(run_dir)), label, metric) for label, run_dir in runs.items()}
    if router_dir is None:
        recorded = [e["router_dir"] for e in entries.values() if e["routing"] == "learned" and e["router_dir"]]
        found = [d for d in recorded if (Path(d) / ROUTER_EVAL_FILE).is_file()]
        router_dir = found[0] if found else None
    return combine(entries, metric, load_router_eval(router_dir) if router_dir is not None else None)


def format_table(report: dict) -> str:
    """A plain-text view of :func:`compare`'s table (one block per task family)."""
    labels = list(report["runs"])
    lines = []
    for family, by_country in report["table"].items():
        lines.append(f"{family}  ({report['metric']})")
        lines.append(f"{'country':<12}" + "".join(f"{label:>14}" for label in labels))
        for country, row in by_country.items():
            cells = [f"{row[x]['value']:.3f} (n={row[x]['n']})" if x in row else "-" for x in labels]
            lines.append(f"{country:<12}" + "".join(f"{c:>14}" for c in cells))
        lines.append(f"{'macro':<12}" + "".join(f"{report['macro'][family][x]['value']:>14.3f}" for x in labels))
        gap = report["oracle_minus_learned"].get(family)
        if gap and gap["macro"] is not None:
            lines.append(f"oracle - learned (macro): {gap['macro']:+.3f}")
    for label, acc in report["routing_accuracy"].items():
        if acc["n"]:
            lines.append(f"routes to the document's own country, {label}: {acc['correct']}/{acc['n']}")
    if report.get("router"):
        r = report["router"]
        lines.append(f"router held-out accuracy: {r['heldout_accuracy']:.3f} ({r['n_correct']}/{r['n_heldout']})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``culturesafe analyze routing``: print the table, and write its JSON with ``--out``."""
    runs = {}
    for item in args.run:
        label, sep, folder = item.partition("=")
        if not sep:
            raise ValueError(f"--run {item!r}: expected LABEL=DIR")
        runs[label] = folder
    report = compare(runs, args.metric, args.router)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_table(report))
    return 0
