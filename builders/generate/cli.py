"""``culturesafe generate ...``: generate a new culture's benchmark, then publish what people verified.

culturesafe generate adaculturesafe --descriptions d.jsonl --out data --generator openai:qwen3-max --base-url URL
culturesafe generate culturax --questions q.csv --out cx --generator hf:Qwen/Qwen2.5-7B-Instruct
culturesafe generate descriptions --source guide.html --country Japan --out desc --generator openai:MODEL ...
culturesafe generate review-import --out data --decisions data.work/review/review.csv [--push me/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesafe_ext.cli_types import count, non_negative_float, positive_int
from culturesafe_ext.data.splits import DATASET_SPLIT_SEED as DEFAULT_SEED


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser("generate", help="generate, deduplicate, verify and publish a new benchmark")
    kinds = gen.add_subparsers(dest="dataset", metavar="WHAT", required=True)

    ada = kinds.add_parser("adaculturesafe", help="5 knowledge MCQs and 5 safety queries per cultural description")
    ada.add_argument(
        "--descriptions", type=Path, required=True, help=".jsonl or .csv: id, country, location, source, description"
    )
    ada.add_argument("--n-knowledge", type=positive_int, default=5, help="MCQs per description (5)")
    ada.add_argument("--n-safety", type=positive_int, default=5, help="safety queries per description (5)")
    _common(ada)
    ada.set_defaults(func=_run_generate)

    cx = kinds.add_parser("culturax", help="helpful, harmless and honest reference answers for new questions")
    cx.add_argument(
        "--questions",
        type=Path,
        required=True,
        help=".jsonl or .csv: id, question [, subdomain_id, subdomain, domain, topic]",
    )
    _common(cx)
    cx.set_defaults(func=_run_generate)

    from . import stage_cli

    stage_cli.add_parsers(kinds, llm_options)

    imp = kinds.add_parser("review-import", help="apply reviewers' decisions and write (and push) the dataset")
    imp.add_argument("--out", type=Path, required=True, help="dataset folder to write (the Hub layout)")
    imp.add_argument("--work", type=Path, help="work folder of the generate run (default: <out>.work)")
    imp.add_argument(
        "--decisions", type=Path, required=True, help="review.csv with a decision column, or a Label Studio JSON export"
    )
    imp.add_argument(
        "--push", metavar="REPO_ID", help="Hub dataset repo; lists what would be uploaded (dry run) unless --upload"
    )
    imp.add_argument("--upload", action="store_true", help="with --push: really upload")
    imp.add_argument("--private", action="store_true", help="create the Hub repo private")
    imp.set_defaults(func=_run_import)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset folder that review-import will write")
    parser.add_argument("--work", type=Path, help="folder for candidates and review files (default: <out>.work)")
    llm_options(parser)
    parser.add_argument("--max-attempts", type=positive_int, default=3, help="attempts per description and kind (3)")
    parser.add_argument(
        "--threshold", type=count, default=10, help="SimHash Hamming threshold for near-duplicates (10)"
    )
    parser.add_argument(
        "--seed",
        type=count,
        default=DEFAULT_SEED,
        help=f"seed of the gold-letter shuffle and the split (default {DEFAULT_SEED}, as `culturesafe build`)",
    )


def llm_options(parser: argparse.ArgumentParser) -> None:
    """The generator's options (what :func:`generator_config` reads), shared by every generate command."""
    parser.add_argument(
        "--generator",
        required=True,
        help="openai:MODEL or openai-batch:MODEL (with --base-url), hf:FOLDER_OR_HUB_ID, or a JSON object of LLM "
        "settings",
    )
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (key: env CULTURESAFE_JUDGE_API_KEY)",
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=None, help="requests in flight (openai; default 32)"
    )
    parser.add_argument("--temperature", type=non_negative_float, default=None, help="sampling temperature (default 0)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="prompts per batch (hf)")
    parser.add_argument("--cache-path", help="sqlite cache of every reply (default: the culturesafe cache dir)")
    parser.add_argument("--max-tokens", type=positive_int, default=1024, help="tokens per reply (1024)")
    parser.add_argument("--prompt-version", default="v1", help="prompt files <name>.<version>.txt (v1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def generator_config(args: argparse.Namespace):
    """The generator's LLM settings from ``--generator`` and the flags (environment not consulted)."""
    from culturesafe_ext.llm import LLMConfig
    from culturesafe_ext.llm.settings import parse_settings

    values = parse_settings(args.generator, "--generator")
    if values.get("backend") not in ("openai", "openai-batch", "hf") or not values.get("model"):
        raise ValueError(
            f"--generator {args.generator.strip()!r}: expected openai:MODEL, openai-batch:MODEL, hf:MODEL or a JSON "
            "object"
        )
    flags = {
        "base_url": args.base_url,
        "concurrency": args.concurrency,
        "temperature": args.temperature,
        "batch_size": args.batch_size,
        "cache_path": args.cache_path,
        "progress": False if args.no_progress else None,
    }
    return LLMConfig.from_spec(values, "--generator", overrides=flags)


def _run_generate(args: argparse.Namespace) -> int:
    from culturesafe_ext.llm import LLMClient

    from . import workdir

    writer = LLMClient(generator_config(args))
    work = args.work or workdir.default_work(args.out)
    common = {
        "max_attempts": args.max_attempts,
        "max_tokens": args.max_tokens,
        "threshold": args.threshold,
        "seed": args.seed,
        "version": args.prompt_version,
    }
    if args.dataset == "adaculturesafe":
        from . import adaculturesafe

        report = adaculturesafe.generate(
            args.descriptions, work, writer, n_knowledge=args.n_knowledge, n_safety=args.n_safety, **common
        )
    else:
        from . import culturax

        report = culturax.generate(args.questions, work, writer, **common)
    stats = report["stats"]
    print(
        f"{stats['tasks']} generation tasks: {stats['complete']} complete, {stats['incomplete']} incomplete after "
        f"{args.max_attempts} attempts; {stats['requests']} requests ({stats['sent']} sent, {stats['cached']} cached, "
        f"{stats['failed_requests']} failed, {stats.get('truncated_replies', 0)} truncated, "
        f"{stats.get('filtered_replies', 0)} filtered); {stats['unparseable_replies']} replies without JSON, "
        f"{stats['replies_with_invalid_items']} with invalid items"
    )
    print(f"near-duplicates removed: {len(report['removed_near_duplicates'])}; candidates: {report['candidates']}")
    if report.get("gold_letters"):
        print(f"gold letters among candidates: {report['gold_letters']}")
    if not sum(report["candidates"].values()):
        raise ValueError(nothing_generated(report, work / workdir.REPORT))
    review_dir = work / workdir.REVIEW
    print(f"review: {review_dir / 'review.csv'} (fill 'decision': accept / reject / edit)")
    print(
        f"   or Label Studio: import {review_dir / 'labelstudio_tasks.json'} "
        f"with {review_dir / 'labelstudio_config.xml'}"
    )
    work_flag = f" --work {work}" if args.work else ""
    print(
        f"then: culturesafe generate review-import --out {args.out}{work_flag} --decisions <review.csv or export.json>"
    )
    return 0


def nothing_generated(report: dict, report_path: Path) -> str:
    """Why a run produced no valid candidate, in one line: a pipeline that produces nothing must not pass."""
    stats = report["stats"]
    reasons = [
        f"{stats[key]} {what}"
        for key, what in [
            ("failed_requests", "failed requests"),
            ("truncated_replies", "replies cut at the token limit (raise --max-tokens)"),
            ("filtered_replies", "replies withheld by a content filter"),
            ("unparseable_replies", "replies without JSON"),
            ("replies_with_invalid_items", "replies with invalid items"),
        ]
        if stats.get(key)
    ]
    first = next(
        (a["problems"][0] for t in report.get("incomplete_tasks", []) for a in t["attempts"] if a["problems"]), ""
    )
    return (
        f"no valid candidates from {stats['requests']} requests ({'; '.join(reasons) or 'no reason recorded'})"
        + (f"; first problem: {first[:200]}" if first else "")
        + f"; every attempt's reply and problems are in {report_path}; nothing to review"
    )


def _run_import(args: argparse.Namespace) -> int:
    from . import adaculturesafe, culturax, descriptions, review, workdir

    work = args.work or workdir.default_work(args.out)
    candidates, report = workdir.read(work)
    decisions = review.read_decisions(args.decisions, {c["id"]: c for c in candidates})
    module = {"adaculturesafe": adaculturesafe, "culturax": culturax, "descriptions": descriptions}[report["dataset"]]
    build = module.publish(args.out, decisions, report, candidates)
    counts = build["review"]
    print(
        f"{counts['candidates']} candidates: {counts['reviewed']} reviewed ({counts['accepted']} accepted, "
        f"{counts['edited']} edited, {counts['rejected']} rejected), {counts['unreviewed']} unreviewed"
    )
    print(f"rows: {build['rows']}")
    if report["dataset"] == "descriptions":
        print(f"next: culturesafe generate adaculturesafe --descriptions {args.out / descriptions.OUTPUT} ...")
    print(f"wrote {args.out}")
    if args.push:
        from ..hub_layout import push_to_hub

        files = push_to_hub(args.out, args.push, private=args.private, dry_run=not args.upload)
        verb = "uploaded" if args.upload else "would upload (dry run; add --upload to push)"
        print(f"{verb} {len(files)} files to https://huggingface.co/datasets/{args.push}:")
        for name in files:
            print(f"  {name}")
    return 0
