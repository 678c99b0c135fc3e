"""``culturesafe build <dataset>``: turn an authors' release into the Hub layout, optionally push it."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesafe_ext.data.splits import DATASET_SPLIT_SEED as DEFAULT_SEED


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    build = subparsers.add_parser("build", help="build a dataset in the Hugging Face Hub layout")
    datasets = build.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    ada = datasets.add_parser("adaculturesafe", help="AdaCultureSafe from the authors' per-country JSON files")
    ada.add_argument("--source", type=Path, required=True, help="folder of the release's per-country *.json")
    ada.add_argument("--out", type=Path, required=True, help="output folder (the layout pushed to the Hub)")
    ada.add_argument("--skip-invalid", action="store_true", help="write invalid records to rejects.jsonl")
    ada.add_argument("--source-commit", default=None, help="upstream commit recorded in the card")
    _add_push_args(ada)
    ada.set_defaults(func=_run_adaculturesafe)

    cx = datasets.add_parser("culturax", help="CulturaX (AlignCultura) from the authors' CulturaX.csv")
    cx.add_argument("--source", type=Path, required=True, help="the release's CulturaX.csv")
    cx.add_argument("--out", type=Path, required=True, help="output folder (the layout pushed to the Hub)")
    cx.add_argument("--threshold", type=int, default=10, help="SimHash Hamming radius of a near duplicate (tau)")
    cx.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the 80/10/10 split ({DEFAULT_SEED})")
    cx.add_argument("--suspect-threshold", type=float, default=None, help="question-reference similarity floor")
    cx.add_argument("--encoding", choices=["auto", "utf-8", "cp1252"], default="auto", help="how the CSV is decoded")
    cx.add_argument("--source-commit", default=None, help="upstream commit recorded in the card")
    _add_push_args(cx)
    cx.set_defaults(func=_run_culturax)


def _add_push_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument("--dry-run", action="store_true", help="with --push: list what would be uploaded")


def _push(args: argparse.Namespace) -> None:
    if not args.push:
        return
    from .hub_layout import push_to_hub

    files = push_to_hub(args.out, args.push, private=args.private, dry_run=args.dry_run)
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} {len(files)} files to https://huggingface.co/datasets/{args.push}:")
    for name in files:
        print(f"  {name}")


def _run_adaculturesafe(args: argparse.Namespace) -> int:
    from . import adaculturesafe

    kwargs = {"source_commit": args.source_commit} if args.source_commit else {}
    release = adaculturesafe.build(args.source, args.out, skip_invalid=args.skip_invalid, **kwargs)
    print(f"{'country':<24} {'kind':<12} {'read':>6} = {'written':>7} + {'rejected':>8}")
    for country, report in release.report.items():
        for kind in ("descriptions", "knowledge", "safety"):
            c = getattr(report, kind)
            print(f"{country:<24} {kind:<12} {c.read:>6} = {c.written:>7} + {c.rejected:>8}")
    for name in release.unreadable_files:
        print(f"unreadable file (all its records rejected): {name}")
    if release.problems:
        print(f"{len(release.problems)} problem(s) written to {args.out / 'rejects.jsonl'}")
    print(f"wrote {args.out}")
    _push(args)
    return 0


def _run_culturax(args: argparse.Namespace) -> int:
    from . import culturax

    kwargs = {"source_commit": args.source_commit} if args.source_commit else {}
    if args.suspect_threshold is not None:
        kwargs["suspect_threshold"] = args.suspect_threshold
    built = culturax.build(
        args.source, args.out, threshold=args.threshold, seed=args.seed, encoding=args.encoding, **kwargs
    )
    report = built.report
    near, split, merged = report["near_duplicates"], report["split"], report["repeats_merged"]
    print(
        f"rows read {report['rows_read']} ({report['encoding']}) = {report['distinct_questions']} distinct questions "
        f"+ {merged['rows']} repeats merged"
    )
    print(
        f"near duplicates at tau={near['threshold']}: {len(near['pairs'])} pairs, {near['clusters']} clusters, "
        f"largest {near['largest_cluster_size']}"
    )
    print(
        "split: "
        + ", ".join(f"{s} {n}" for s, n in split["counts"].items())
        + f"; pairs across splits within tau: {split['leakage']['pairs_across_splits']}"
    )
    print(f"reference_suspect: {report['reference_audit']['flagged']} flagged")
    print(f"wrote {args.out} (build_report.json lists every merge, pair and flag)")
    _push(args)
    return 0
