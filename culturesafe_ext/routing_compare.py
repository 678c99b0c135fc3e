"""Base vs fixed vs learned vs oracle routing, per country, from lm-eval output folders.

Reads what lm-eval wrote (``results_*.json``, and ``samples_*.jsonl`` when ``--log_samples`` was on)
for several runs of the same tasks, and returns one JSON-able table (format :data:`FORMAT`):

- ``table[family][country][label]`` = ``{"value", "stderr", "n"}`` for the chosen metric (``acc,none``);
- ``macro[family][label]`` = mean over the countries every run has (with ``n_countries``);
- ``oracle_minus_learned[family]`` = per country and macro, when one run is ``routing=oracle`` and one
  ``routing=learned`` (from the run's model info, else from its label);
- ``routing_accuracy[label]`` = routed requests whose adapter is the document's own country, from the
  route tags ``hf-router`` logs in the samples (``correct``, ``n``, per country);
- ``router`` = the router's own held-out evaluation (``router_eval.json``) when given.

``python -m culturesafe_ext.routing_compare --run base=out/base --run learned=out/learned ... --out cmp.json``
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from culturesafe_ext.data.schema import slug
from culturesafe_ext.models.route_tags import ROUTE_KEY

FORMAT = "culturesafe.routing_compare.v1"


def _latest_results(run_dir: Path) -> Path:
    found = sorted(Path(run_dir).rglob("results_*.json"))
    if not found:
        raise FileNotFoundError(f"{run_dir}: no results_*.json (an lm_eval --output_path folder was expected)")
    return found[-1]


def _task_country(config: dict) -> str | None:
    name = (config.get("dataset_kwargs") or {}).get("culturesafe_config", "")
    kind, _, country = name.partition("_")
    return country or None


def routing_mode(results: dict, label: str) -> str:
    """``routing`` as hf-router reported it, else the label (a plain ``hf`` run is the base model)."""
    return str(results.get("config", {}).get("routing") or label)


def route_accuracy(samples_files: list[Path]) -> dict[str, Any]:
    """How many logged requests went to their document's own country's adapter."""
    per_country: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in samples_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
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


def compare(runs: dict[str, str | Path], metric: str = "acc,none", router_dir: str | Path | None = None) -> dict:
    """The comparison table of labelled lm-eval output folders (see the module docstring)."""
    table: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    modes: dict[str, str] = {}
    accuracy: dict[str, Any] = {}
    for label, run_dir in runs.items():
        path = _latest_results(Path(run_dir))
        results = json.loads(path.read_text(encoding="utf-8"))
        modes[label] = routing_mode(results, label)
        tasks_seen = []
        for task, config in results.get("configs", {}).items():
            country = _task_country(config)
            values = results.get("results", {}).get(task, {})
            if country is None or metric not in values:
                continue
            family = task[: -len(country) - 1] if task.endswith("_" + country) else task
            metric_name, _, filt = metric.partition(",")
            stderr = values.get(f"{metric_name}_stderr,{filt}")
            table[family][country][label] = {
                "value": values[metric],
                "stderr": stderr if isinstance(stderr, int | float) else None,
                "n": (results.get("n-samples", {}).get(task) or {}).get("effective"),
            }
            tasks_seen.append(task)
        samples = [f for t in tasks_seen for f in sorted(path.parent.glob(f"samples_{t}_*.jsonl"))]
        if samples:
            accuracy[label] = route_accuracy(samples)

    macro: dict[str, dict[str, Any]] = {}
    gaps: dict[str, dict[str, Any]] = {}
    oracle = next((k for k, m in modes.items() if m == "oracle"), None)
    learned = next((k for k, m in modes.items() if m == "learned"), None)
    for family, by_country in table.items():
        shared = sorted(c for c, row in by_country.items() if set(row) == set(runs))
        macro[family] = {
            label: {
                "value": sum(by_country[c][label]["value"] for c in shared) / len(shared) if shared else math.nan,
                "n_countries": len(shared),
            }
            for label in runs
        }
        if oracle and learned:
            per = {
                c: row[oracle]["value"] - row[learned]["value"]
                for c, row in by_country.items()
                if oracle in row and learned in row
            }
            gaps[family] = {"by_country": per, "macro": sum(per.values()) / len(per) if per else None}
    router = None
    if router_dir is not None:
        from culturesafe_ext.models.culture_router import ROUTER_EVAL_FILE

        router = json.loads((Path(router_dir) / ROUTER_EVAL_FILE).read_text(encoding="utf-8"))
    return {
        "format": FORMAT,
        "metric": metric,
        "runs": {label: {"dir": str(d), "routing": modes[label]} for label, d in runs.items()},
        "table": {f: dict(sorted(c.items())) for f, c in table.items()},
        "macro": macro,
        "oracle_minus_learned": gaps,
        "routing_accuracy": accuracy,
        "router": router,
    }


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", help="an lm_eval output folder")
    parser.add_argument("--metric", default="acc,none")
    parser.add_argument("--router", help="router folder (its router_eval.json is added)")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.run:
        label, sep, folder = item.partition("=")
        if not sep:
            parser.error(f"--run {item!r}: expected LABEL=DIR")
        runs[label] = folder
    report = compare(runs, args.metric, args.router)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
