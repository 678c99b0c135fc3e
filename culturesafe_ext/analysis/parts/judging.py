"""What the judging cost (tokens, new tokens, estimated cost) and, for a judge panel, how far its judges agree.

Read from each judged task's metrics (the safety tasks write them, see ``_safety_template_yaml``):
``judge_*tokens``, ``judge_cost`` (only with ``price_per_million``), and with a panel each judge's score
and failures (``<dimension>_judge<k>``, ``judge_failures_judge<k>``) and Krippendorff's alpha with its
bootstrap 95% CI (``<dimension>_alpha``, ``_alpha_ci_low``, ``_alpha_ci_high``).
"""

from __future__ import annotations

import math
from typing import Any

from culturesafe_ext.analysis.html import Page, num, table
from culturesafe_ext.analysis.parts import Context, per_run

NAME = "judging"
TITLE = "Judge usage, cost and panel agreement"
FILTER = "judge"
TOKENS = ("prompt_tokens", "completion_tokens", "new_prompt_tokens", "new_completion_tokens")
DIMENSIONS = ("respectfulness", "awareness")


def _metric(results: dict[str, Any], name: str) -> float | None:
    value = results.get(f"{name},{FILTER}")
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def compute(ctx: Context) -> dict[str, Any] | None:
    tasks: dict[str, Any] = {}
    for task in ctx.run.tasks:
        results = ctx.run.results(task)
        if f"judge_prompt_tokens,{FILTER}" not in results:
            continue
        entry: dict[str, Any] = {name: _metric(results, f"judge_{name}") for name in TOKENS}
        entry["cost"] = _metric(results, "judge_cost")
        judges = _panel_judges(ctx, task)
        if judges:
            entry["panel"] = {
                "judges": judges,
                "failures": [_metric(results, f"judge_failures_judge{k}") for k in range(1, len(judges) + 1)],
                **{
                    dimension: {
                        "panel": _metric(results, dimension),
                        "per_judge": [_metric(results, f"{dimension}_judge{k}") for k in range(1, len(judges) + 1)],
                        "alpha": _metric(results, f"{dimension}_alpha"),
                        "ci95": [
                            _metric(results, f"{dimension}_alpha_ci_low"),
                            _metric(results, f"{dimension}_alpha_ci_high"),
                        ],
                    }
                    for dimension in DIMENSIONS
                },
            }
        tasks[task] = entry
    if not tasks:
        return None
    totals = {name: sum(t[name] or 0 for t in tasks.values()) for name in TOKENS}
    costs = [t["cost"] for t in tasks.values() if t["cost"] is not None]
    return {"tasks": tasks, "totals": {**totals, "cost": sum(costs) if costs else None}}


def _panel_judges(ctx: Context, task: str) -> list[str]:
    """``backend:model`` of each judge of the task's panel (empty for a single judge)."""
    for answer in (a for answers in ctx.data.safety.values() for a in answers if a.task == task):
        if answer.judge and answer.judge.get("judges"):
            return [f"{j['backend']}:{j['model']}" for j in answer.judge["judges"]]
    return []


NOTE = (
    "Tokens are the judge's own counts (a server's <code>usage</code>; the local hf judge counts its prompt and "
    "generated tokens) of every reply the scores "
    "stand on, cached replies included; <i>new</i> counts only what this run paid for. Cost is an estimate "
    "from <code>price_per_million</code>. Panel alpha: Krippendorff's alpha (interval) between the judges "
    "over every judged response, with a seeded bootstrap 95% CI."
)


def _section(label: str, r: dict, page: Page) -> list[str]:
    rows = [
        (task, *(int(t[name] or 0) for name in TOKENS), num(t["cost"], 4))
        for task, t in [*r["tasks"].items(), ("total", r["totals"])]
    ]
    html = [table(["task", "prompt tokens", "completion tokens", "new prompt", "new completion", "cost"], rows)]
    panel_rows = []
    for task, t in r["tasks"].items():
        panel = t.get("panel")
        if not panel:
            continue
        for dimension in DIMENSIONS:
            d = panel[dimension]
            low, high = d["ci95"]
            per_judge = ", ".join(
                f"{name} {num(score)} ({int(f or 0)} failures over both dimensions)"
                for name, score, f in zip(panel["judges"], d["per_judge"], panel["failures"], strict=True)
            )
            panel_rows.append(
                (task, dimension, num(d["panel"]), per_judge, f"{num(d['alpha'])} [{num(low)}, {num(high)}]")
            )
    if panel_rows:
        html.append(table(["task", "dimension", "panel score", "each judge", "alpha [95% CI]"], panel_rows))
    return html


render = per_run(NOTE, _section)
