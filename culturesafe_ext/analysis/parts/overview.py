"""Which tasks a run holds, with sample counts, --limit, versions, every benchmark's judge and its failure counts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from culturesafe_ext.analysis.html import Page, esc, table
from culturesafe_ext.analysis.parts import Context, per_run

NAME = "overview"
TITLE = "Runs"


def compute(ctx: Context) -> dict[str, Any]:
    judges: Counter[str] = Counter()
    failures = judged = 0
    for answers in ctx.data.safety.values():  # every benchmark's judge: AdaCultureSafe safety ...
        for a in answers:
            judges[json.dumps(a.judge, sort_keys=True)] += 1
            failures += a.failures
            judged += a.n_judged
    for cx_answers in ctx.data.culturax.values():  # ... and CulturaX's WR / SS / TI judge
        for c in cx_answers:
            judges[json.dumps(c.judge, sort_keys=True)] += 1
            failures += c.judge_failures
            judged += c.n_judged
    from culturesafe_ext.analysis.calibrate import calibration_of

    listed = [{"judge": json.loads(k), "n_answers": n} for k, n in judges.items()]
    for j in listed:
        j["calibration"] = calibration_of(j["judge"], ctx.options.judge_cards) if j["judge"] else None
    limits = sorted({str(t["limit"]) for t in ctx.data.tasks.values()})
    return {
        "model": ctx.data.label,
        "root": str(ctx.run.root),
        "results_files": [str(rf.path) for rf in ctx.run.results_files],
        "model_args": next((rf.data.get("config", {}).get("model_args") for rf in ctx.run.results_files), None),
        "lm_eval_version": next((rf.data.get("lm_eval_version") for rf in ctx.run.results_files), None),
        "limit": limits,
        "tasks": ctx.data.tasks,
        "judges": listed,
        "judge_failures": failures,
        "n_judged": judged,
        "notes": ctx.data.notes,
    }


def _section(label: str, r: dict, page: Page) -> list[str]:
    parts = []
    judge = "; ".join(
        f"{j['judge'].get('backend')}:{j['judge'].get('model')} (rubric {j['judge'].get('rubric_version')}, "
        f"{j['n_answers']} answers)"
        for j in r["judges"]
        if j["judge"]
    )
    parts.append(
        f"<p class='note'>model_args: <code>{esc(r['model_args'])}</code>; lm-eval {esc(r['lm_eval_version'])}; "
        f"--limit: {esc(', '.join(r['limit']))}; judge: {esc(judge or 'none')}; judge failures "
        f"{r['judge_failures']} of {r['judge_failures'] + r['n_judged']} judgements</p>"
    )
    for j in r["judges"]:
        if j["judge"]:
            parts.append(f"<p class='note'>{esc(_calibration_line(j))}</p>")
    if any(x != "None" for x in r["limit"]):
        parts.append("<p class='warn'>This run used --limit: its figures cover a subset of the data.</p>")
    rows = [(task, t["kind"], t["family"], t["n_samples"], t["version"], t["limit"]) for task, t in r["tasks"].items()]
    parts.append(table(["task", "kind", "family / variant", "samples", "version", "limit"], rows))
    for note in r["notes"]:
        parts.append(f"<p class='note'>{esc(note)}</p>")
    return parts


render = per_run(None, _section)


def _calibration_line(judge: dict) -> str:
    from culturesafe_ext.analysis.calibrate import calibration_text

    return (
        f"{judge['judge'].get('backend')}:{judge['judge'].get('model')}: {calibration_text(judge.get('calibration'))}"
    )
