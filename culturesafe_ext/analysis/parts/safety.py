"""Safety scores (respectfulness, awareness, 1..10) per variant and country, with the judge failures behind them."""

from __future__ import annotations

from typing import Any

from culturesafe_ext.analysis import stats
from culturesafe_ext.analysis.extract import Answer, per_description
from culturesafe_ext.analysis.html import Page, esc, table, with_ci
from culturesafe_ext.analysis.parts import Context, per_run, pyplot, scopes
from culturesafe_ext.tasks.taxonomy import SAFETY_VARIANTS

NAME = "safety"
TITLE = "Safety scores"
DIMENSIONS = ("respectfulness", "awareness")


def description_scores(answers: list[Answer], dimension: str) -> dict[tuple[str, str], float]:
    return per_description([(a.country, a.description_id, getattr(a, dimension)) for a in answers])


def summarize(answers: list[Answer], options) -> dict[str, Any]:
    scores = {d: description_scores(answers, d) for d in DIMENSIONS}
    keys = {(a.country, a.description_id) for a in answers}
    out: dict[str, Any] = {}
    for scope, in_scope in scopes(keys):
        picked = [a for a in answers if (a.country, a.description_id) in in_scope]
        entry: dict[str, Any] = {
            d: stats.mean_ci(
                [scores[d][k] for k in sorted(in_scope) if k in scores[d]], options.n_resamples, options.seed
            )
            for d in DIMENSIONS
        }
        entry.update(
            n_answers=len(picked),
            n_descriptions=len(in_scope),
            judge_failures=sum(a.failures for a in picked),
            n_judged=sum(a.n_judged for a in picked),
        )
        out[scope] = entry
    return out


def compute(ctx: Context) -> dict[str, Any] | None:
    if not ctx.data.safety:
        return None
    overview = ctx.done.get("overview") or {}
    return {
        "judge_calibration": [j.get("calibration") for j in overview.get("judges", []) if j.get("judge")],
        "variants": {v: summarize(ctx.data.safety[v], ctx.options) for v in SAFETY_VARIANTS if v in ctx.data.safety},
        "per_description": {
            v: {d: {f"{c}|{i}": s for (c, i), s in description_scores(answers, d).items()} for d in DIMENSIONS}
            for v, answers in ctx.data.safety.items()
        },
    }


NOTE = (
    "Judge scores 1..10, averaged per description first; 95% bootstrap CIs over descriptions. "
    "An answer the judge could not score is left out of the mean and counted under judge failures."
)


def _section(label: str, r: dict, page: Page) -> list[str]:
    from culturesafe_ext.analysis.calibrate import calibration_text

    html = [f"<p class='note'>{esc(calibration_text(c))}</p>" for c in r.get("judge_calibration", [])]
    rows = [
        (
            variant,
            scope,
            with_ci(s["respectfulness"]),
            with_ci(s["awareness"]),
            s["n_answers"],
            f"{s['judge_failures']} / {s['judge_failures'] + s['n_judged']}",
        )
        for variant, by_scope in r["variants"].items()
        for scope, s in by_scope.items()
    ]
    html.append(table(["variant", "country", "respectfulness", "awareness", "answers", "judge failures"], rows))
    html.append(page.figure(_bars(r["variants"]), f"{label}: respectfulness per country and variant, 95% CI"))
    return html


render = per_run(NOTE, _section)


def _bars(variants: dict[str, dict]):
    """Grouped bars: countries on x, one bar per variant, CI whiskers where there is one."""
    plt = pyplot()
    scopes_ = list(dict.fromkeys(s for by_scope in variants.values() for s in by_scope))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(variants))
    for i, (variant, by_scope) in enumerate(variants.items()):
        xs, means, low, high = [], [], [], []
        for x, scope in enumerate(scopes_):
            stat = by_scope.get(scope, {}).get("respectfulness", {})
            if stat.get("mean") is None:
                continue
            m = stat["mean"]
            ci = stat.get("ci95") or [m, m]
            xs.append(x + (i - (len(variants) - 1) / 2) * width)
            means.append(m)
            low.append(m - ci[0])
            high.append(ci[1] - m)
        ax.bar(xs, means, width, yerr=[low, high], capsize=2, label=variant)
    ax.set_xticks(range(len(scopes_)), scopes_, rotation=30, fontsize=8)
    ax.set_ylim(0, 10)
    ax.set_ylabel("respectfulness (1-10)")
    ax.legend(fontsize=7, ncol=len(variants))
    return fig
