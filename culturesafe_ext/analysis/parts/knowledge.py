"""Knowledge accuracy per scoring family and country (averaged per description first), with trivial baselines."""

from __future__ import annotations

from typing import Any

from culturesafe_ext.analysis import stats
from culturesafe_ext.analysis.extract import Question, per_description
from culturesafe_ext.analysis.html import Page, num, table, with_ci
from culturesafe_ext.analysis.parts import POOLED, Context, per_run, pyplot, scopes
from culturesafe_ext.data.baselines import constant_letter, majority_letter, random_choice

NAME = "knowledge"
TITLE = "Knowledge accuracy"


def baselines(questions: list[Question], circular: bool) -> dict[str, Any]:
    """Random choice and always-the-most-frequent-gold-letter, averaged per description like the metric.

    CircularEval: random is (1/n)^n per question; a constant letter is right in one rotation only, so 0.
    """
    if not questions:
        return {}
    letter, count, n = majority_letter(q.gold_letter for q in questions)
    rand = per_description([(q.country, q.description_id, random_choice(q.n_options, circular)) for q in questions])
    majority = per_description(
        [(q.country, q.description_id, constant_letter(q.gold_letter, letter, circular)) for q in questions]
    )
    return {
        "random": sum(rand.values()) / len(rand),
        "majority_letter": letter,
        "majority_letter_share": count / n,
        "majority": sum(majority.values()) / len(majority),
    }


def summarize(questions: list[Question], family: str, options) -> dict[str, Any]:
    by_description = per_description([(q.country, q.description_id, q.correct) for q in questions])
    out: dict[str, Any] = {}
    for scope, keys in scopes(by_description):
        in_scope = [q for q in questions if (q.country, q.description_id) in keys]
        out[scope] = {
            "acc_by_description": stats.mean_ci(
                [by_description[k] for k in sorted(keys)], options.n_resamples, options.seed
            ),
            "n_questions": len(in_scope),
            "n_descriptions": len(keys),
            "baselines": baselines(in_scope, family == "circular"),
        }
    countries = [c for c in out if c != POOLED]
    out[POOLED]["macro_over_countries"] = (
        sum(out[c]["acc_by_description"]["mean"] for c in countries) / len(countries) if countries else None
    )
    return out


def compute(ctx: Context) -> dict[str, Any] | None:
    if not ctx.data.knowledge:
        return None
    return {
        "headline_family": ctx.headline_family,
        "families": {f: summarize(qs, f, ctx.options) for f, qs in ctx.data.knowledge.items()},
        "per_description": {
            f: {
                f"{c}|{d}": v
                for (c, d), v in per_description([(q.country, q.description_id, q.correct) for q in qs]).items()
            }
            for f, qs in ctx.data.knowledge.items()
        },
    }


NOTE = (
    "Accuracy is averaged per description first, then over descriptions (the paper's protocol); "
    "95% bootstrap CIs over descriptions. <em>pooled</em> = all descriptions; the lm-eval group row is the macro "
    "mean over countries. Baselines: random choice, and always answering the most frequent gold letter of the "
    "scope (CircularEval: (1/n)^n and 0)."
)


def _section(label: str, r: dict, page: Page) -> list[str]:
    rows = [
        (
            family,
            scope,
            with_ci(s["acc_by_description"]),
            s["n_questions"],
            num(s["baselines"].get("random")),
            f"{num(s['baselines'].get('majority'))} ({s['baselines'].get('majority_letter')})",
        )
        for family, scopes_ in r["families"].items()
        for scope, s in scopes_.items()
    ]
    headers = ["family", "country", "acc (by description) [95% CI]", "questions", "random", "majority letter"]
    html = [table(headers, rows)]
    family = r["headline_family"]
    if not family:
        return html
    plt = pyplot()
    data = {c: s for c, s in r["families"][family].items()}
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(data)
    means = [data[c]["acc_by_description"]["mean"] or 0 for c in names]
    errs = [
        [m - (data[c]["acc_by_description"]["ci95"] or [m, m])[0] for c, m in zip(names, means, strict=False)],
        [(data[c]["acc_by_description"]["ci95"] or [m, m])[1] - m for c, m in zip(names, means, strict=False)],
    ]
    ax.bar(names, means, yerr=errs, capsize=3, color="#4c78a8")
    ax.scatter(
        names,
        [data[c]["baselines"].get("random", 0) for c in names],
        marker="_",
        s=300,
        color="k",
        label="random",
        zorder=3,
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"accuracy ({family})")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    html.append(page.figure(fig, f"{label}: knowledge accuracy ({family}) per country, 95% CI; black: random baseline"))
    return html


render = per_run(NOTE, _section)
