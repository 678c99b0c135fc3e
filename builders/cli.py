"""``culturesafe build <dataset>``: turn an authors' release into the Hub layout, optionally push it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    try:
        release = adaculturesafe.build(args.source, args.out, skip_invalid=args.skip_invalid, **kwargs)
    except adaculturesafe.ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
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
