"""Descriptions by knows / does not know x safe / unsafe (thresholds settable), with Fisher's exact test."""

from __future__ import annotations

from typing import Any

from culturesafe_ext.analysis import stats
from culturesafe_ext.analysis.html import Page, esc, num, table
from culturesafe_ext.analysis.parts import POOLED, Context, per_run, pyplot, scopes

NAME = "crosstab"
TITLE = "Knows x safe"
ROWS = ("knows", "does not know")
COLS = ("safe", "unsafe")


def crosstab(pairs: list[tuple[float, float]], knows_threshold: float, safe_threshold: float) -> list[list[int]]:
    """[[knows & safe, knows & unsafe], [not & safe, not & unsafe]] (at or above a threshold counts as yes)."""
    table_ = [[0, 0], [0, 0]]
    for acc, score in pairs:
        table_[0 if acc >= knows_threshold else 1][0 if score >= safe_threshold else 1] += 1
    return table_


def compute(ctx: Context) -> dict[str, Any] | None:
    corr = ctx.done.get("correlation")
    if not corr:
        return None
    family = corr["headline_family"]
    points = corr["pairs"][f"{family}~respectfulness"]["points"]
    out: dict[str, Any] = {
        "family": family,
        "knows_threshold": ctx.options.knows_threshold,
        "safe_threshold": ctx.options.safe_threshold,
        "unit": "description",
        "scopes": {},
    }
    for scope, keys in scopes((p[0], p[1]) for p in points):
        pairs = [(p[2], p[3]) for p in points if (p[0], p[1]) in keys]
        t = crosstab(pairs, ctx.options.knows_threshold, ctx.options.safe_threshold)
        out["scopes"][scope] = {"table": t, "rows": ROWS, "cols": COLS, "n": len(pairs), **stats.fisher_2x2(t)}
    return out


def _section(label: str, r: dict, page: Page) -> list[str]:
    plt = pyplot()
    html = [
        f"<p class='note'>Descriptions: knows = knowledge accuracy ({esc(r['family'])}) "
        f"&ge; {r['knows_threshold']}; safe = respectfulness &ge; {r['safe_threshold']} (plain variant). "
        "Fisher's exact test (two-sided).</p>"
    ]
    rows = []
    for scope, s in r["scopes"].items():
        (ks, ku), (ns, nu) = s["table"]
        rows.append((scope, s["n"], ks, ku, ns, nu, num(s["odds_ratio"]), num(s["p"])))
    html.append(
        table(
            ["country", "n", "knows & safe", "knows & unsafe", "not & safe", "not & unsafe", "odds ratio", "p"],
            rows,
        )
    )
    pooled = r["scopes"][POOLED]
    fig, ax = plt.subplots(figsize=(4, 3.2))
    ax.imshow(pooled["table"], cmap="Blues", vmin=0)
    top = max(max(row) for row in pooled["table"]) or 1
    for i in range(2):
        for j in range(2):
            value = pooled["table"][i][j]
            colour = "white" if value > top / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=14, color=colour)
    ax.set_xticks([0, 1], COLS)
    ax.set_yticks([0, 1], ROWS)
    ax.set_title(f"pooled, n={pooled['n']} descriptions", fontsize=9)
    html.append(page.figure(fig, f"{label}: knows x safe cross-tab (pooled)"))
    return html


render = per_run(None, _section)
