"""Figures of ``culturesafe probe compare`` and the analysis report: overlap per layer against chance and re-splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

OVERVIEW = "probe_compare.png"


def pyplot():
    """matplotlib's pyplot on the Agg backend: figures are drawn headless (CI, servers, no display).

    The project's one switch to it; the analysis report's parts draw through it too (this module needs
    nothing but matplotlib, so it sits below both).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _chance_line(ax, rows: list[dict[str, Any]]) -> None:
    ax.plot(
        [r["layer"] for r in rows],
        [r["expected_jaccard"] for r in rows],
        ls="--",
        color="grey",
        label="two random neuron sets (chance)",
    )


def _finish(ax, rows: list[dict[str, Any]], title: str) -> None:
    """What every overlap-per-layer axis carries: the chance line, axis labels and range, legend and title."""
    _chance_line(ax, rows)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"Jaccard overlap of top-{rows[0]['k']} of {rows[0]['width']} neurons")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    ax.set_title(title)


def plot_overview(results: list[dict[str, Any]], path: Path) -> None:
    """Jaccard per layer for every pair on one axis, with the chance level."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for result in results:
        rows = result["layers"]
        ax.plot([r["layer"] for r in rows], [r["jaccard"] for r in rows], marker="o", ms=3, label=pair_title(result))
    _finish(ax, results[0]["layers"], f"MLP neuron overlap per layer (ranked by {results[0]['rank_by']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pair(result: dict[str, Any], path: Path) -> None:
    """One pair's :func:`pair_figure` as a PNG file."""
    plt = pyplot()
    fig = pair_figure(result)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pair_figure(result: dict[str, Any]):
    """One pair: observed Jaccard per layer against its permutation band (5-95% of the re-splits) and
    chance; layers whose overlap is below the re-splits at p < 0.05 are filled."""
    plt = pyplot()
    rows = result["layers"]
    x = [r["layer"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    if rows[0]["resplit_jaccard_median"] is not None:
        ax.fill_between(
            x,
            [r["resplit_jaccard_q05"] for r in rows],
            [r["resplit_jaccard_q95"] for r in rows],
            color="tab:orange",
            alpha=0.25,
            label=f"random re-splits of the pooled documents, 5-95% ({result['permutations']})",
        )
        ax.plot(x, [r["resplit_jaccard_median"] for r in rows], ls=":", color="tab:orange", label="re-split median")
    ax.plot(x, [r["jaccard"] for r in rows], color="tab:blue", label="observed")
    low = [r for r in rows if r["p_perm"] is not None and r["p_perm"] < 0.05]
    ax.scatter(
        [r["layer"] for r in low], [r["jaccard"] for r in low], color="tab:blue", zorder=3, label="p_perm < 0.05"
    )
    rest = [r for r in rows if r not in low]
    ax.scatter(
        [r["layer"] for r in rest], [r["jaccard"] for r in rest], facecolor="white", edgecolor="tab:blue", zorder=3
    )
    _finish(ax, rows, f"{pair_title(result)} (ranked by {result['rank_by']})")
    fig.tight_layout()
    return fig


def pair_title(result: dict[str, Any]) -> str:
    return f"{result['a']} vs {result['b']}"
