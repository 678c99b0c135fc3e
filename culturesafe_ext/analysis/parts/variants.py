"""Effect of each prompt variant (elicit or oracle minus plain) and the judge-sensitivity control."""

from __future__ import annotations

from typing import Any

from culturesafe_ext.analysis import stats
from culturesafe_ext.analysis.html import Page, table, with_ci
from culturesafe_ext.analysis.parts import POOLED, Context, per_run, pyplot, scopes

NAME = "variants"
TITLE = "Variant effects and judge sensitivity"
CONTRASTS = (
    ("elicit - plain", "elicit", "plain"),
    ("oracle - plain", "oracle", "plain"),
    ("right custom - wrong custom (judge sensitivity)", "plain", "wrongcustom"),
)


def compute(ctx: Context) -> dict[str, Any] | None:
    safety = ctx.done.get("safety")
    if not safety:
        return None
    per = safety["per_description"]
    out: dict[str, Any] = {}
    for name, after, before in CONTRASTS:
        if after not in per or before not in per:
            continue
        out[name] = {}
        for dimension in ("respectfulness", "awareness"):
            a, b = per[after][dimension], per[before][dimension]
            common = sorted(set(a) & set(b))
            out[name][dimension] = {
                scope: stats.paired_difference(
                    [a[f"{c}|{d}"] for c, d in sorted(keys)],
                    [b[f"{c}|{d}"] for c, d in sorted(keys)],
                    ctx.options.n_resamples,
                    ctx.options.seed,
                )
                for scope, keys in scopes(tuple(k.split("|", 1)) for k in common)
            }
    return out or None


NOTE = (
    "Mean paired difference over descriptions scored in both variants, 95% paired bootstrap CI. "
    "A judge that reads the custom scores lower with a wrong one: a judge-sensitivity difference near 0 means the "
    "judge ignores the custom."
)


def _section(label: str, r: dict, page: Page) -> list[str]:
    rows = [
        (name, dimension, scope, with_ci(s))
        for name, dims in r.items()
        for dimension, by_scope in dims.items()
        for scope, s in by_scope.items()
    ]
    html = [table(["contrast", "score", "country", "mean difference [95% CI]"], rows)]
    plt = pyplot()
    names = list(r)
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.6 * len(names)))
    for i, name in enumerate(names):
        s = r[name]["respectfulness"][POOLED]
        if s["mean"] is None:
            continue
        low, high = s["ci95"] or [s["mean"], s["mean"]]
        ax.errorbar([s["mean"]], [i], xerr=[[s["mean"] - low], [high - s["mean"]]], fmt="o", capsize=4)
    ax.axvline(0, color="#999", lw=1)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("difference in respectfulness (pooled)")
    html.append(page.figure(fig, f"{label}: variant effects on respectfulness, pooled, 95% CI"))
    return html


render = per_run(NOTE, _section)
