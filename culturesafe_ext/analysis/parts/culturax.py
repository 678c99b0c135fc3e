"""CulturaX: win rate, safety score (% unsafe), truthful x informative and Avg per UNESCO domain and subdomain."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from culturesafe_ext.analysis.extract import CULTURAX_METRICS, CulturaXAnswer
from culturesafe_ext.analysis.html import Page, esc, num, table
from culturesafe_ext.analysis.parts import Context, pyplot

NAME = "culturax"
TITLE = "CulturaX"


def summarize(answers: list[CulturaXAnswer]) -> dict[str, Any]:
    """Means of each metric over answers that have it; Avg = (WR + TI - SS) / 3 from those means."""
    out: dict[str, Any] = {"n": len(answers), "judge_failures": sum(a.judge_failures for a in answers)}
    for metric in CULTURAX_METRICS:
        values = [a.values[metric] for a in answers if a.values[metric] is not None]
        out[metric] = sum(values) / len(values) if values else None
        out[f"n_{metric}"] = len(values)
    parts = (out["wr"], out["ti"], out["ss"])
    out["avg"] = None if None in parts else (out["wr"] + out["ti"] - out["ss"]) / 3
    return out


def compute(ctx: Context) -> dict[str, Any] | None:
    """Per setting (sampled runs and greedy are never pooled together): per domain, subdomain and overall."""
    if not ctx.data.culturax:
        return None
    return {"settings": {setting: _by_domain(answers) for setting, answers in sorted(ctx.data.culturax.items())}}


def _by_domain(everything: list[CulturaXAnswer]) -> dict[str, Any]:
    by_domain: dict[str, list[CulturaXAnswer]] = defaultdict(list)
    by_subdomain: dict[tuple[str, str], list[CulturaXAnswer]] = defaultdict(list)
    for a in everything:
        by_domain[a.domain].append(a)
        by_subdomain[(a.domain, a.subdomain or a.subdomain_id)].append(a)
    return {
        "domains": {d: summarize(v) for d, v in sorted(by_domain.items())},
        "subdomains": {f"{d}|{s}": summarize(v) for (d, s), v in sorted(by_subdomain.items())},
        "pooled": summarize(everything),
    }


HEADERS = ["domain", "subdomain", "answers", "WR", "SS", "TI", "truthful", "informative", "Avg", "judge failures"]
METRICS = ("wr", "ss", "ti", "truthful", "informative", "avg")


def render(results: dict[str, dict], page: Page) -> str:
    html = [
        "<p class='note'>Per answer as logged by the culturax tasks (sampled runs and greedy apart); means over "
        "answers that have the metric. SS is the share of unsafe answers (lower is better); "
        "Avg = (WR + TI - SS) / 3.</p>"
    ]
    for label, by_setting in results.items():
        for setting, r in by_setting["settings"].items():
            html.append(f"<h3>{esc(label)}: {esc(setting)}</h3>")
            html.append(_render_setting(f"{label} ({setting})", r, page))
    return "".join(html)


def _row(domain: str, sub: str, s: dict[str, Any]) -> tuple:
    return (domain, sub, s["n"], *(num(s[m]) for m in METRICS), s["judge_failures"])


def _render_setting(label: str, r: dict[str, Any], page: Page) -> str:
    plt = pyplot()

    rows = [_row(d, "(all)", s) for d, s in r["domains"].items()]
    rows += [_row(*key.split("|", 1), s) for key, s in r["subdomains"].items()]
    rows.append(_row("all", "(all)", r["pooled"]))
    domains = list(r["domains"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.27
    for i, metric in enumerate(("wr", "ss", "ti")):
        xs = [x + (i - 1) * width for x in range(len(domains))]
        ax.bar(xs, [r["domains"][d][metric] or 0 for d in domains], width, label=metric.upper())
    ax.set_xticks(range(len(domains)), domains, rotation=30, fontsize=8)
    ax.legend(fontsize=8)
    return table(HEADERS, rows) + page.figure(fig, f"{label}: CulturaX WR / SS / TI per domain")
