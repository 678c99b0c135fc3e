"""Does a model that knows a culture answer safely about it? Per-description correlation, per country and pooled."""

from __future__ import annotations

from typing import Any

from culturesafe_ext.analysis import stats
from culturesafe_ext.analysis.html import Page, num, table
from culturesafe_ext.analysis.parts import POOLED, Context, per_run, pyplot, scopes

NAME = "correlation"
TITLE = "Knowledge vs safety"


def _split(key: str) -> tuple[str, str]:
    country, description_id = key.split("|", 1)
    return country, description_id


def compute(ctx: Context) -> dict[str, Any] | None:
    knowledge, safety = ctx.done.get("knowledge"), ctx.done.get("safety")
    if not knowledge or not safety or "plain" not in safety["per_description"]:
        return None
    out: dict[str, Any] = {"headline_family": knowledge["headline_family"], "pairs": {}}
    for family, acc in knowledge["per_description"].items():
        for dimension, score in safety["per_description"]["plain"].items():
            common = sorted(set(acc) & set(score))
            entry: dict[str, Any] = {"scopes": {}, "points": [[*_split(k), acc[k], score[k]] for k in common]}
            for scope, keys in scopes(_split(k) for k in common):
                ks = sorted(f"{c}|{d}" for c, d in keys)
                entry["scopes"][scope] = stats.correlation(
                    [acc[k] for k in ks], [score[k] for k in ks], ctx.options.n_resamples, ctx.options.seed
                )
            out["pairs"][f"{family}~{dimension}"] = entry
    return out


def _cell(c: dict[str, Any], name: str) -> str:
    if name not in c:
        return f"n/a: {c.get('undefined', '')}"
    s = c[name]
    ci = f" [{num(s['ci95'][0])}, {num(s['ci95'][1])}]" if s["ci95"] else ""
    return f"{num(s['r'])}{ci} p={s['p']:.2g}"


NOTE = (
    "Units are descriptions: knowledge accuracy (averaged over its questions) against the plain "
    "variant's judge score (averaged over its answers). Spearman and Pearson from scipy with p-values; 95% paired "
    "bootstrap CIs. A CI that excludes 0 but stays near it means <em>negligible</em>, not <em>none</em>."
)


def _section(label: str, r: dict, page: Page) -> list[str]:
    import numpy as np

    plt = pyplot()
    rows = [
        (pair.replace("~", " vs "), scope, c["n"], _cell(c, "spearman"), _cell(c, "pearson"))
        for pair, entry in r["pairs"].items()
        for scope, c in entry["scopes"].items()
    ]
    headers = ["knowledge vs safety", "country", "descriptions", "Spearman rho [95% CI]", "Pearson r [95% CI]"]
    html = [table(headers, rows)]
    headline = r["pairs"].get(f"{r['headline_family']}~respectfulness")
    if not headline or not headline["points"]:
        return html
    countries = sorted({p[0] for p in headline["points"]})
    cols = min(3, len(countries))
    rows_n = (len(countries) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 3.4 * rows_n), squeeze=False)
    for ax, country in zip(axes.flat, countries, strict=False):
        pts = np.array([[p[2], p[3]] for p in headline["points"] if p[0] == country])
        ax.scatter(pts[:, 0], pts[:, 1], s=14, alpha=0.6)
        c = headline["scopes"][country]
        if "spearman" in c:
            slope, intercept = np.polyfit(pts[:, 0], pts[:, 1], 1)
            xs = np.linspace(0, 1, 10)
            ax.plot(xs, slope * xs + intercept, color="#d62728")
            ax.set_title(f"{country}: rho={c['spearman']['r']:.2f} (n={c['n']})", fontsize=9)
        else:
            ax.set_title(f"{country}: rho n/a (n={c['n']})", fontsize=9)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(0.5, 10.5)
        ax.set_xlabel(f"knowledge acc ({r['headline_family']})", fontsize=8)
        ax.set_ylabel("respectfulness", fontsize=8)
    for ax in list(axes.flat)[len(countries) :]:
        ax.axis("off")
    fig.tight_layout()
    pooled = headline["scopes"][POOLED]
    caption = (
        f"{label}: knowledge vs respectfulness per description, least-squares line; "
        f"pooled {_cell(pooled, 'spearman')} (n={pooled['n']})"
    )
    html.append(page.figure(fig, caption))
    return html


render = per_run(NOTE, _section)
