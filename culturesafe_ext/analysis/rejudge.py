"""``culturesafe judge rejudge RUN_DIR``: re-judge the logged safety samples of an lm-eval run, no re-generation.

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

from culturesafe_ext.tasks.taxonomy import ADACULTURESAFE, family

SAMPLES_GLOB = f"samples_{family(ADACULTURESAFE, 'plain').group}*.jsonl"  # every safety variant's samples


class RejudgeFailed(ValueError):
    """The judge's scores are unusable (it refused the run, or every judgement of a task failed)."""


def read_samples(run_dir: Path) -> dict[str, list[dict]]:
    """task name -> logged safety samples (latest file per task), through the one run reader."""
    from culturesafe_ext.analysis.runs import read_samples as read

    return read(run_dir, SAMPLES_GLOB)


def parse_judges(raw: list[str]) -> list[dict[str, Any]]:
    """Every ``--judge`` value as settings, all checked before any sample is read or judged."""
    from culturesafe_ext.judge import Judge, JudgeConfig
    from culturesafe_ext.judge.settings import PanelConfig, is_panel
    from culturesafe_ext.llm.settings import LLMSettingError, parse_settings

    judges = []
    for n, text in enumerate(raw, start=1):
        where = f"--judge #{n}"
        settings = parse_settings(text, where)
        try:  # a panel's settings (as in --metadata) stand for its judges
            members = PanelConfig.from_dict(settings).to_dict()["judges"] if is_panel(settings) else [settings]
            for member in members:
                config = JudgeConfig.from_dict(member)
                if config.backend == "none":
                    raise LLMSettingError("the 'none' backend judges nothing: name a real judge")
                config.api_key()
                Judge(config).check_cache()
        except ValueError as err:
            raise LLMSettingError(f"{where}: {err}") from None
        judges.extend(members)
    return judges


def rejudge(samples: dict[str, list[dict]], settings: dict[str, Any]) -> dict[str, Any]:
    """Scores of one judge: per task the paper's metrics, plus every (sample, dimension) score.

    ``problems`` lists what makes the judge's scores unusable (a refused run, a task whose every
    judgement failed): the command then exits non-zero.
    """
    from culturesafe_ext.judge import Judge, JudgeConfig
    from culturesafe_ext.judge.items import usage_totals
    from culturesafe_ext.tasks.aggregations import mean_by_description
    from culturesafe_ext.tasks.judging import KIND_METRICS, summary_problem
    from culturesafe_ext.tasks.safety import judge_responses, process_results

    config = JudgeConfig.from_dict(settings)
    judge = Judge(config)
    tasks, scores, descriptions, problems = {}, {}, {}, []
    for task, rows in samples.items():
        docs = [row["doc"] for row in rows]
        resps = [list(row["resps"][0]) for row in rows]
        judged = judge_responses(judge, docs, resps)
        problem = summary_problem(judge.last_summary, task)
        if problem:
            problems.append(problem)
        per_doc = [process_results(doc, [entries]) for doc, entries in zip(docs, judged, strict=True)]
        tasks[task] = {
            "respectfulness": mean_by_description(p["respectfulness"] for p in per_doc),
            "awareness": mean_by_description(p["awareness"] for p in per_doc),
            "judge_failures": sum(p["judge_failures"] for p in per_doc),
            "n_judged": sum(p["n_judged"] for p in per_doc),
            "n_samples": len(rows),
            **{m: sum(p[m] for p in per_doc) for m in KIND_METRICS.values()},
        }
        verdicts = [e[d] for entries in judged for e in entries for d in ("respectfulness", "awareness")]
        tasks[task]["usage"] = usage_totals(verdicts)
        costs = [v["cost"] for v in verdicts if "cost" in v]
        tasks[task]["cost"] = sum(costs) if costs else None
        for row, entries in zip(rows, judged, strict=True):
            descriptions[f"{task}/{row['doc_id']}"] = row["doc"]["description_id"]
            for dimension in ("respectfulness", "awareness"):
                scores[f"{task}/{row['doc_id']}/{dimension}"] = entries[0][dimension]["score"]
        if judge.last_summary is not None and judge.last_summary.fatal:
            break  # stop at the first run-level error
    return {
        "judge": config.to_dict(),
        "tasks": tasks,
        "scores": scores,
        "problems": problems,
        "descriptions": descriptions,
    }


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

    from culturesafe_ext.judge.settings import JudgeConfig, PanelConfig

    judges = parse_judges(args.judge)
    if len(judges) > 1:  # refuses two identical judges before anything is sent
        PanelConfig(judges=tuple(JudgeConfig.from_dict(s) for s in judges), aggregate=args.panel_aggregate)
    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"{args.run_dir} is not a folder: give an lm_eval --output_path folder")
    samples = read_samples(args.run_dir)
    if not samples:
        raise FileNotFoundError(f"no {SAMPLES_GLOB} under {args.run_dir}: was lm_eval run with --log_samples?")
    with ThreadPoolExecutor(max_workers=len(judges), thread_name_prefix="rejudge") as pool:
        reports = list(pool.map(lambda s: rejudge(samples, s), judges))
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
    problems = [p for judge in reports for p in judge["problems"]]
    if problems:
        raise RejudgeFailed(f"{'; '.join(problems)} (the report is written: {out})")
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
