"""Base vs fixed vs learned vs oracle routing per country, route accuracy and the oracle-minus-learned gap.

Each ``hf-router`` run (its results file records ``routing``) gives one column; the runs are joined by
routing mode with :func:`culturesafe_ext.analysis.routing_compare.combine`, the same table ``routing_compare``
prints, so the report and the command line never disagree.
"""

from __future__ import annotations

from typing import Any

from culturesafe_ext.analysis.html import Page, esc, num, table
from culturesafe_ext.analysis.parts import Context, pyplot
from culturesafe_ext.analysis.routing_compare import combine, load_router_eval, run_entry

NAME = "routing"
TITLE = "Adapter routing: base, fixed, learned, oracle"
METRIC = "acc,none"
BASE_MODE = "none"


def compute(ctx: Context) -> dict[str, Any] | None:
    latest = ctx.run.results_files[-1].data
    if not latest.get("config", {}).get("routing"):
        return None  # not an hf-router run
    entry = run_entry(ctx.run, ctx.data.label, METRIC)
    if not entry["cells"]:
        return None
    entry["metric"] = METRIC
    entry["router_eval"] = None
    if entry["routing"] == "learned" and entry["router_dir"]:
        try:
            entry["router_eval"] = load_router_eval(entry["router_dir"])
        except FileNotFoundError as err:
            entry["router_eval_missing"] = str(err)
    return entry


def _order(mode: str) -> tuple[int, str]:
    kind = mode.partition(":")[0]
    return ({"none": 0, "fixed": 1, "learned": 2, "oracle": 3}.get(kind, 4), mode)


def columns(results: dict[str, dict]) -> dict[str, dict]:
    """One column per routing mode (``base`` for ``none``); a mode run twice gets the run label added."""
    by_mode: dict[str, list[str]] = {}
    for label, entry in results.items():
        by_mode.setdefault(entry["routing"], []).append(label)
    out = {}
    for mode in sorted(by_mode, key=_order):
        name = "base" if mode == BASE_MODE else mode
        for label in by_mode[mode]:
            out[name if len(by_mode[mode]) == 1 else f"{name} ({label})"] = results[label]
    return out


def combined(results: dict[str, dict]) -> dict[str, Any]:
    """The ``culturesafe.routing_compare.v1`` table of the runs in this report."""
    cols = columns(results)
    router = next((e["router_eval"] for e in cols.values() if e.get("router_eval")), None)
    return combine(cols, next(iter(cols.values()))["metric"], router)


def _bars(page: Page, family: str, by_country: dict[str, dict], names: list[str], metric: str) -> str:
    import numpy as np

    plt = pyplot()

    countries = list(by_country)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(countries) + 2), 3.5))
    x = np.arange(len(countries))
    for i, name in enumerate(names):
        values = [by_country[c].get(name, {}).get("value", np.nan) for c in countries]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, countries, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    n = sorted({cell["n"] for row in by_country.values() for cell in row.values() if cell.get("n") is not None})
    n_text = f"n={n[0]}" if len(n) == 1 else f"n={n[0]}..{n[-1]}" if n else "n unknown"
    return page.figure(fig, f"{family}: {metric} per country and routing mode ({n_text} questions per cell)")


def render(results: dict[str, dict], page: Page) -> str:
    report = combined(results)
    names = list(report["runs"])
    metric = report["metric"]
    html = [
        "<p class='note'>One column per <code>hf-router</code> run, named by its routing mode (base = "
        "<code>routing=none</code>); cells: "
        f"{esc(metric)} (n questions). Macro: mean over the countries every run has. Gap: oracle minus learned.</p>",
        table(["column", "routing", "run folder"], [(n, r["routing"], r["dir"]) for n, r in report["runs"].items()]),
    ]
    for family, by_country in report["table"].items():
        gap = report["oracle_minus_learned"].get(family)
        headers = ["country", *names] + (["oracle - learned"] if gap else [])
        rows = []
        for country, row in by_country.items():
            cells = [f"{num(row[x]['value'])} (n={row[x]['n']})" if x in row else "-" for x in names]
            if gap:
                d = gap["by_country"].get(country)
                cells.append("-" if d is None else f"{d:+.3f}")
            rows.append([country, *cells])
        macro = [
            f"{num(m['value'])} ({m['n_countries']} countries)" for m in (report["macro"][family][x] for x in names)
        ]
        if gap:
            macro.append("n/a" if gap["macro"] is None else f"{gap['macro']:+.3f}")
        rows.append(["macro", *macro])
        html.append(f"<h3>{esc(family)}</h3>" + table(headers, rows))
        html.append(_bars(page, family, by_country, names, metric))
    accuracy = report["routing_accuracy"]
    if accuracy:
        html.append("<h3>Routes to the document's own country</h3>")
        html.append(
            table(
                ["column", "correct / routed requests", "accuracy"],
                [(n, f"{a['correct']}/{a['n']}", num(a["accuracy"])) for n, a in accuracy.items()],
            )
        )
    router = report["router"]
    if router:
        html.append(
            f"<p>Router held-out accuracy (<code>router_eval.json</code>): {num(router.get('heldout_accuracy'))} "
            f"({router.get('n_correct')}/{router.get('n_heldout')} prompts).</p>"
        )
    for entry in results.values():
        if entry.get("router_eval_missing"):
            html.append(f"<p class='warn'>{esc(entry['router_eval_missing'])}</p>")
    return "".join(html)
