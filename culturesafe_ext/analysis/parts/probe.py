"""Per-layer overlap of the MLP neurons knowledge and safety prompts activate (``hf-probe`` runs).

An ``hf-probe`` run writes ``probe_stats/<task>.npz`` beside its results file (or into its ``probe_out``
model arg); its knowledge tasks and its safety tasks are pooled into two groups and compared with
:func:`culturesafe_ext.probing.overlap.compare_groups` (the statistics of ``culturesafe probe compare``).
A ``probe_compare.json`` found in the run folder is embedded as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from culturesafe_ext.analysis.html import Page, esc, num, table
from culturesafe_ext.analysis.parts import Context, per_run
from culturesafe_ext.analysis.runs import model_args_of
from culturesafe_ext.tasks.taxonomy import KNOWLEDGE, SAFETY, classify

NAME = "probe"
TITLE = "MLP neuron overlap per layer (probing)"
STATS_DIR = "probe_stats"
GROUPS = (KNOWLEDGE, SAFETY)  # taxonomy kinds pooled into the two compared groups
REPORT = "probe_compare.json"  # culturesafe_ext.probing.overlap.REPORT (probing imports torch: loaded only when used)


def stats_files(ctx: Context) -> list[Path]:
    """The run's probe stats files: ``probe_stats/`` beside each results file, and ``probe_out``."""
    folders = {rf.path.parent / STATS_DIR for rf in ctx.run.results_files}
    for rf in ctx.run.results_files:
        out = model_args_of(rf.data).get("probe_out")
        if out:
            folders.add(Path(out))
    return sorted({p for f in folders if f.is_dir() for p in f.glob("*.npz") if not p.name.startswith(".")})


def _from_stats(ctx: Context, files: list[Path]) -> dict[str, Any] | None:
    from culturesafe_ext.probing.overlap import Group, compare_groups, group_info
    from culturesafe_ext.probing.stats_file import load_stats, merge

    by_group: dict[str, list] = {}
    other = []
    for path in files:
        stats = load_stats(path)
        kind = classify(str(stats.meta.get("task", "")))
        label = kind[0] if kind is not None and kind[0] in GROUPS else None
        if label is None:
            other.append(str(stats.meta.get("task")))
        else:
            by_group.setdefault(label, []).append(stats)
    groups = [Group(label, merge(by_group[label])) for label in GROUPS if label in by_group]
    out: dict[str, Any] = {
        "groups": {g.label: group_info(g) for g in groups},
        "other_tasks": sorted(other),
        "comparisons": [],
    }
    if len(groups) >= 2:
        k = int(groups[0].stats.meta["k"])
        out["comparisons"] = compare_groups(groups, k, "mean", ctx.options.n_resamples, ctx.options.seed)
    return out


def compute(ctx: Context) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    files = stats_files(ctx)
    if files:
        out["stats"] = _from_stats(ctx, files)
    reports = []
    for path in sorted(ctx.run.root.rglob(REPORT)):
        from culturesafe_ext.probing.overlap import REPORT_FORMAT

        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("format") != REPORT_FORMAT:
            raise ValueError(f"{path}: not a probe compare report (format {report.get('format')!r})")
        reports.append({"file": str(path), "groups": report["groups"], "comparisons": report["comparisons"]})
    if reports:
        out["reports"] = reports
    return out or None


def _layer_table(result: dict[str, Any]) -> str:
    rows = [
        (
            r["layer"],
            r["module"],
            f"{r['intersection']}/{r['k']}",
            num(r["jaccard"]),
            num(r["expected_jaccard"]),
            "-"
            if r["resplit_jaccard_median"] is None
            else f"{num(r['resplit_jaccard_median'])} [{num(r['resplit_jaccard_q05'])}, "
            f"{num(r['resplit_jaccard_q95'])}]",
            "-" if r["p_perm"] is None else num(r["p_perm"]),
            f"{r['p_above_chance']:.2g}",
        )
        for r in result["layers"]
    ]
    headers = ["layer", "module", "shared", "Jaccard", "chance", "re-splits median [5%, 95%]", "p_perm", "p_chance"]
    return table(headers, rows, sortable=True)


def _comparisons(label: str, source: str, groups: dict, comparisons: list[dict], page: Page) -> list[str]:
    from culturesafe_ext.probing.plots import pair_figure

    html = []
    for result in comparisons:
        counts = "; ".join(
            f"{g}: {groups[g]['n_docs']} documents, {groups[g]['n_tokens']} tokens"
            for g in (result["a"], result["b"])
            if g in groups
        )
        html.append(
            f"<h4>{esc(result['a'])} vs {esc(result['b'])}</h4><p class='note'>{esc(source)}; top-{result['k']} "
            f"of {result['width']} neurons by {esc(result['rank_by'])}, {esc(_resplits(result))} "
            f"(seed {result['seed']}); {esc(counts)}.</p>"
        )
        if result.get("p_perm_note"):
            html.append(f"<p class='note'><b>Too few re-splits:</b> {esc(result['p_perm_note'])}.</p>")
        html.append(_layer_table(result))
        html.append(
            page.figure(
                pair_figure(result),
                f"{label}: {result['a']} vs {result['b']}, Jaccard overlap per layer against random re-splits "
                f"(band 5-95%) and chance (dashed); {counts}",
            )
        )
    return html


NOTE = (
    "Per layer, the Jaccard overlap of two groups' top-k MLP neurons (by mean activation), "
    "the overlap of two random k-sets (chance), and a permutation test over documents: small p_perm means "
    "the groups share fewer neurons than re-splits of their pooled documents do (see README, Neuron "
    "probing)."
)


def _section(label: str, r: dict, page: Page) -> list[str]:
    html = []
    stats = r.get("stats")
    if stats:
        if stats["other_tasks"]:
            html.append(
                f"<p class='note'>Stats of tasks in neither group, not compared: "
                f"{esc(', '.join(stats['other_tasks']))}</p>"
            )
        if not stats["comparisons"]:
            html.append(
                f"<p class='warn'>Probe stats for {esc(', '.join(stats['groups']) or 'no group')} only: "
                "knowledge and safety tasks are both needed for a comparison.</p>"
            )
        html += _comparisons(label, "probe stats of this run", stats["groups"], stats["comparisons"], page)
    for report in r.get("reports", []):
        html += _comparisons(label, report["file"], report["groups"], report["comparisons"], page)
    return html


render = per_run(NOTE, _section)


def _resplits(result: dict) -> str:
    """How the permutation test was run: exact over every distinct re-split, or drawn, and its smallest p."""
    if not result["permutations"]:
        return "no permutation test"
    if "p_perm_min" not in result:  # a report written before the count was recorded
        return f"{result['permutations']} re-splits"
    how = "all {n} distinct re-splits (exact)" if result["p_perm_exact"] else "{n} drawn re-splits"
    return how.format(n=result["permutations"]) + f", smallest attainable p_perm {result['p_perm_min']:.3g}"
