"""``culturesafe probe ...``: neuron-probing commands (the statistics come from ``--model hf-probe``)."""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

from culturesafe_ext.cli_types import count, positive_int
from culturesafe_ext.probing import overlap
from culturesafe_ext.probing.overlap import RANK_BY, REPORT, REPORT_FORMAT, Group, compare_groups, group_info
from culturesafe_ext.probing.plots import OVERVIEW, pair_title, plot_overview, plot_pair
from culturesafe_ext.probing.stats_file import load_stats, merge


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("probe", help="analyse MLP neuron statistics recorded by --model hf-probe")
    commands = parser.add_subparsers(dest="probe_command", metavar="COMMAND", required=True)
    add_compare_parser(commands)


def parse_group(spec: str) -> Group:
    """``LABEL=PATH[,PATH...]`` or ``PATH``; a path is a stats ``.npz``, a glob, or a folder of them."""
    label, _, paths = spec.rpartition("=")
    files: list[Path] = []
    for item in paths.split(","):
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.npz"))
        else:
            found = sorted(Path(p) for p in glob.glob(item)) or [path]
        files.extend(found)
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise FileNotFoundError(f"{spec!r}: no probe stats file at {', '.join(missing) or paths}")
    stats = merge([load_stats(f) for f in files])
    if not label:
        label = files[0].stem if len(files) == 1 else Path(paths).name
    return Group(label, stats)


def resplit_text(result: dict) -> str:
    """One line on the permutation test: exact or drawn, how many re-splits, the smallest p it can give."""
    if not result["permutations"]:
        return "permutation test: none (a group has fewer than 2 documents, or --permutations 0)"
    how = "exact over all" if result["p_perm_exact"] else "drawn:"
    of = "" if result["p_perm_exact"] else f" of {result['resplits_distinct']:.3g}"
    text = (
        f"permutation test: {how} {result['permutations']}{of} distinct re-splits; "
        f"smallest attainable p_perm {result['p_perm_min']:.3g}"
    )
    return text + (f"\nWARNING: {result['p_perm_note']}" if result["p_perm_note"] else "")


def run_compare(args: argparse.Namespace) -> int:
    groups = [parse_group(spec) for spec in args.groups]
    if len(groups) < 2:
        raise ValueError("give at least two groups of stats files")
    k = args.top or int(groups[0].stats.meta["k"])
    results = compare_groups(groups, k, args.rank_by, args.permutations, args.seed)
    by_label = {g.label: g for g in groups}
    for result in results:
        ga, gb, rows = by_label[result["a"]], by_label[result["b"]], result["layers"]
        print(
            f"\n{ga.label} ({ga.stats.n_tokens} tokens, {ga.stats.meta.get('n_docs')} docs) vs "
            f"{gb.label} ({gb.stats.n_tokens} tokens, {gb.stats.meta.get('n_docs')} docs): "
            f"top-{rows[0]['k']} of {rows[0]['width']} by {args.rank_by}"
        )
        print(resplit_text(result))
        header = ("layer", "overlap", "jaccard", "chance", "re-split", "p_perm", "p_chance")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 7, 8, 7, 8, 7, 9), strict=True)))
        for r in rows:
            median = "-" if r["resplit_jaccard_median"] is None else f"{r['resplit_jaccard_median']:.3f}"
            p_perm = "-" if r["p_perm"] is None else f"{r['p_perm']:.3f}"
            print(
                f"{r['layer']:>5} {r['intersection']:>7} {r['jaccard']:>8.3f} {r['expected_jaccard']:>7.3f} "
                f"{median:>8} {p_perm:>7} {r['p_above_chance']:>9.2g}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    figures = [
        {
            "file": OVERVIEW,
            "title": "MLP neuron overlap per layer",
            "caption": f"Jaccard overlap of each layer's top-{k} neurons (ranked by {args.rank_by}) for every pair "
            "of groups; dashed: two random neuron sets of that size.",
        }
    ]
    plot_overview(results, args.out / OVERVIEW)
    for result in results:
        plot_pair(result, args.out / result["figure"])
        figures.append(
            {
                "file": result["figure"],
                "title": pair_title(result),
                "caption": "Observed overlap per layer against random re-splits of the two groups' pooled "
                "documents (band: 5-95%); filled points: overlap lower than the re-splits at p < 0.05.",
            }
        )
    report = {
        "format": REPORT_FORMAT,
        "groups": {g.label: group_info(g) for g in groups},
        "comparisons": results,
        "figures": figures,
    }
    (args.out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out / REPORT} and {len(figures)} figures in {args.out}")
    return 0


def add_compare_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="per-layer overlap of two groups' most-activated MLP neurons",
        description=overlap.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "groups",
        nargs="+",
        metavar="STATS",
        help="a group: LABEL=PATH[,PATH...] or PATH; PATH is a stats .npz, a glob or a folder "
        "(its files are pooled). Every pair of groups is compared.",
    )
    parser.add_argument("--top", type=positive_int, help="neurons per layer in each set (default: the probe's k)")
    parser.add_argument(
        "--rank-by",
        choices=RANK_BY,
        default="mean",
        help="mean activation (default) or the rate of being in a token's top-k",
    )
    parser.add_argument("--permutations", type=count, default=1000, help="random re-splits (0: skip the test)")
    parser.add_argument("--seed", type=count, default=0)
    parser.add_argument("--out", type=Path, default=Path("probe_compare"), help="folder for the JSON and plot")
    parser.set_defaults(func=run_compare)
