"""``culturesafe judge RUN_DIR``: re-judge the logged safety samples of an lm-eval run, no re-generation.

With one judge it re-scores; with two or more (a panel, judged concurrently, each from its own cache
entries) it also reports the panel's score (mean or median of the judges) and how far they agree:
Krippendorff's alpha (interval) with a seeded bootstrap 95% CI, and per pair Spearman's rho, exact and
within-1 agreement on the rounded scores, beside each judge's own scores, failures and token usage.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

SAMPLES_GLOB = "samples_adaculturesafe_safety*.jsonl"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    judge = subparsers.add_parser("judge", help="re-judge the logged safety samples of an lm_eval run")
    judge.add_argument("run_dir", type=Path, help="an lm_eval --output_path folder (run with --log_samples)")
    judge.add_argument(
        "--judge",
        action="append",
        required=True,
        metavar="JSON",
        help='judge settings as in --metadata, e.g. \'{"backend": "openai", "model": ..., "base_url": ...}\'; '
        'repeat for several judges (a panel, {"judges": [...]}, stands for its judges)',
    )
    judge.add_argument(
        "--panel-aggregate",
        choices=("mean", "median"),
        default="mean",
        help="with several --judge: the panel's score of an answer (default: mean)",
    )
    judge.add_argument("--out", type=Path, help="write the report JSON here (default: RUN_DIR/rejudge.json)")
    judge.set_defaults(func=run)


def read_samples(run_dir: Path) -> dict[str, list[dict]]:
    """task name -> logged safety samples (latest file per task), through the one run reader."""
    from culturesafe_ext.analysis.runs import read_samples as read

    return read(run_dir, SAMPLES_GLOB)


def rejudge(samples: dict[str, list[dict]], settings: dict[str, Any]) -> dict[str, Any]:
    """Scores of one judge: per task the paper's metrics, plus every (sample, dimension) score."""
    from culturesafe_ext.judge import Judge, JudgeConfig
    from culturesafe_ext.judge.items import usage_totals
    from culturesafe_ext.tasks.aggregations import mean_by_description
    from culturesafe_ext.tasks.safety import judge_responses, process_results

    config = JudgeConfig.from_dict(settings)
    judge = Judge(config)
    tasks, scores, descriptions = {}, {}, {}
    for task, rows in samples.items():
        docs = [row["doc"] for row in rows]
        resps = [list(row["resps"][0]) for row in rows]
        judged = judge_responses(judge, docs, resps)
        per_doc = [process_results(doc, [entries]) for doc, entries in zip(docs, judged, strict=True)]
        tasks[task] = {
            "respectfulness": mean_by_description(p["respectfulness"] for p in per_doc),
            "awareness": mean_by_description(p["awareness"] for p in per_doc),
            "judge_failures": sum(p["judge_failures"] for p in per_doc),
            "n_judged": sum(p["n_judged"] for p in per_doc),
            "n_samples": len(rows),
        }
        verdicts = [e[d] for entries in judged for e in entries for d in ("respectfulness", "awareness")]
        tasks[task]["usage"] = usage_totals(verdicts)
        costs = [v["cost"] for v in verdicts if "cost" in v]
        tasks[task]["cost"] = sum(costs) if costs else None
        for row, entries in zip(rows, judged, strict=True):
            descriptions[f"{task}/{row['doc_id']}"] = row["doc"]["description_id"]
            for dimension in ("respectfulness", "awareness"):
                scores[f"{task}/{row['doc_id']}/{dimension}"] = entries[0][dimension]["score"]
    return {"judge": config.to_dict(), "tasks": tasks, "scores": scores, "descriptions": descriptions}


def panel_summary(reports: list[dict[str, Any]], aggregate: str = "mean") -> dict[str, Any]:
    """The panel's per-task scores (mean by description of each answer's panel score) and, per dimension,
    Krippendorff's alpha between the judges with its bootstrap 95% CI."""
    import statistics

    from culturesafe_ext.judge.panel import alpha, alpha_ci
    from culturesafe_ext.tasks.aggregations import mean_by_description

    combine = statistics.fmean if aggregate == "mean" else statistics.median
    keys = list(reports[0]["scores"])
    out: dict[str, Any] = {"aggregate": aggregate, "tasks": defaultdict(dict), "alpha": {}}
    for dimension in ("respectfulness", "awareness"):
        mine = [k for k in keys if k.endswith("/" + dimension)]
        units = [[r["scores"].get(k) for r in reports] for k in mine]
        low, high = alpha_ci(units)
        out["alpha"][dimension] = {"alpha": alpha(units), "ci95": [low, high], "n": len(units)}
        by_task: dict[str, list] = defaultdict(list)
        for key, unit in zip(mine, units, strict=True):
            scored = [s for s in unit if s is not None]
            task, doc_id, _ = key.rsplit("/", 2)
            description = reports[0]["descriptions"][f"{task}/{doc_id}"]
            by_task[task].append((description, combine(scored) if scored else None))
        for task, pairs in by_task.items():
            out["tasks"][task][dimension] = mean_by_description(pairs)
    out["tasks"] = dict(out["tasks"])
    return out


def agreement(a: dict[str, float | None], b: dict[str, float | None]) -> dict[str, Any]:
    """Spearman's rho and exact / within-1 agreement over the items both judges scored."""
    from scipy.stats import spearmanr

    keys = [k for k in a if a[k] is not None and b.get(k) is not None]
    out: dict[str, Any] = {"n": len(keys), "n_missing": len(a) - len(keys)}
    if len(keys) >= 2:
        rho = spearmanr([a[k] for k in keys], [b[k] for k in keys])
        out["spearman_rho"], out["spearman_p"] = float(rho.statistic), float(rho.pvalue)
    if keys:
        diffs = [abs(round(a[k]) - round(b[k])) for k in keys]
        out["exact"] = sum(d == 0 for d in diffs) / len(keys)
        out["within_1"] = sum(d <= 1 for d in diffs) / len(keys)
    return out


def run(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from culturesafe_ext.judge.config import JudgeConfig, PanelConfig, is_panel

    settings = []
    for raw in args.judge:  # a panel's settings (as in --metadata) stand for its judges
        value = json.loads(raw)
        settings.extend(PanelConfig.from_dict(value).to_dict()["judges"] if is_panel(value) else [value])
    if len(settings) > 1:  # refuses two identical judges before anything is sent
        PanelConfig(judges=tuple(JudgeConfig.from_dict(s) for s in settings), aggregate=args.panel_aggregate)
    samples = read_samples(args.run_dir)
    with ThreadPoolExecutor(max_workers=len(settings), thread_name_prefix="rejudge") as pool:
        reports = list(pool.map(lambda s: rejudge(samples, s), settings))
    report: dict[str, Any] = {"run_dir": str(args.run_dir), "judges": reports}
    if len(reports) > 1:
        report["panel"] = panel_summary(reports, args.panel_aggregate)
        report["agreement"] = {}
        for (i, a), (j, b) in itertools.combinations(enumerate(reports), 2):
            per_dim = defaultdict(dict)
            for dimension in ("respectfulness", "awareness"):
                keep = [k for k in a["scores"] if k.endswith("/" + dimension)]
                per_dim[dimension] = agreement({k: a["scores"][k] for k in keep}, b["scores"])
            report["agreement"][f"{i}-{j}"] = dict(per_dim)
    out = args.out or args.run_dir / "rejudge.json"
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    _print(report)
    print(f"report: {out}")
    return 0


def _print(report: dict[str, Any]) -> None:
    for i, judge in enumerate(report["judges"]):
        name = f"{judge['judge']['backend']}:{judge['judge']['model']}"
        print(f"judge {i} ({name})")
        print(f"  {'task':<44} {'respect':>8} {'aware':>8} {'failures':>9} {'judged':>7}")
        for task, m in judge["tasks"].items():
            print(
                f"  {task:<44} {m['respectfulness']:>8.3f} {m['awareness']:>8.3f} "
                f"{m['judge_failures']:>9} {m['n_judged']:>7}"
            )
    if "panel" in report:
        panel = report["panel"]
        print(f"panel ({panel['aggregate']} of {len(report['judges'])} judges)")
        for task, m in panel["tasks"].items():
            print(f"  {task:<44} {m['respectfulness']:>8.3f} {m['awareness']:>8.3f}")
        for dimension, a in panel["alpha"].items():
            low, high = a["ci95"]
            print(f"  Krippendorff's alpha {dimension}: {a['alpha']:.3f} [{low:.3f}, {high:.3f}] (n={a['n']})")
    for i, judge in enumerate(report["judges"]):
        tokens = {t: m["usage"] for t, m in judge["tasks"].items()}
        prompt = sum(u["prompt_tokens"] for u in tokens.values())
        completion = sum(u["completion_tokens"] for u in tokens.values())
        new = sum(u["new_prompt_tokens"] + u["new_completion_tokens"] for u in tokens.values())
        costs = [m["cost"] for m in judge["tasks"].values() if m["cost"] is not None]
        cost = f", cost {sum(costs):.4f}" if costs else ""
        print(f"judge {i} usage: {prompt} prompt + {completion} completion tokens ({new} new){cost}")
    for pair, dims in report.get("agreement", {}).items():
        for dimension, a in dims.items():
            rho = f"{a['spearman_rho']:.3f} (p={a['spearman_p']:.2g})" if "spearman_rho" in a else "n/a"
            print(
                f"agreement judges {pair} {dimension}: n={a['n']} rho={rho} "
                f"exact={a.get('exact', float('nan')):.3f} within-1={a.get('within_1', float('nan')):.3f}"
            )
