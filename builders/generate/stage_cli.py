"""The papers' curation steps as ``culturesafe generate`` sub-commands: ``descriptions`` (AdaCultureSafe) and
``culturax-classify`` / ``culturax-expand`` / ``culturax-references`` (AlignCultura's Stage I).

Each step is resumable: every LLM reply goes through the one client's sqlite cache, every fetch and search through
the sources cache (``<work>/sources.sqlite`` unless ``--sources-cache`` says otherwise).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from culturesafe_ext.cli_types import count, in_range, positive_int, share
from culturesafe_ext.data.splits import DATASET_SPLIT_SEED as DEFAULT_SEED


def add_parsers(kinds: argparse._SubParsersAction, llm: Callable[[argparse.ArgumentParser], None]) -> None:
    """The four commands; ``llm`` adds the generator's options (``--generator``, ``--base-url``, ...)."""
    desc = kinds.add_parser(
        "descriptions", help="cultural descriptions, one custom each, from source guides (files, URLs, search)"
    )
    desc.add_argument(
        "--source", action="append", default=[], metavar="PATH_OR_URL",
        help="a local .html/.md/.txt/.pdf file or an http(s) URL (repeatable)",
    )  # fmt: skip
    desc.add_argument("--query", action="append", default=[], help="a search query (repeatable; needs --search)")
    desc.add_argument("--search", help="searxng[:BASE_URL], tavily or bm25:PATH (the sources package's backends)")
    desc.add_argument("--k", type=positive_int, default=None, help="results per query (sources setting k, default 10)")
    desc.add_argument("--country", required=True, help="the country the sources describe (ISO 3166 name)")
    desc.add_argument(
        "--chunk-chars", type=positive_int, default=6000, help="characters of source text per LLM call (6000)"
    )
    desc.add_argument(
        "--max-bytes", type=positive_int, default=None, help="size cap of a page or file (default 2000000)"
    )
    desc.add_argument("--min-chars", type=count, default=None, help="shortest main text kept (default 200)")
    desc.add_argument("--sources-cache", help="sqlite cache of fetches and searches (default: <work>/sources.sqlite)")
    _out(desc, work=True)
    llm(desc)
    _attempts(desc)
    _threshold(desc)
    desc.set_defaults(func=run_descriptions)

    cls = kinds.add_parser(
        "culturax-classify", help="CulturaX Stage I: questions -> UNESCO subdomains (multi-label, threshold delta)"
    )
    where = cls.add_mutually_exclusive_group(required=True)
    where.add_argument("--questions", type=Path, help=".jsonl or .csv: id, question [, subdomain_id = reference]")
    where.add_argument("--culturax-csv", type=Path, help="the authors' CulturaX.csv: its class column is the reference")
    cls.add_argument("--delta", type=share, default=0.5, help="probability threshold of a label (0.5)")
    cls.add_argument("--out", type=Path, required=True, help="folder for questions.jsonl and the report")
    llm(cls)
    _attempts(cls)
    cls.set_defaults(func=run_classify)

    exp = kinds.add_parser(
        "culturax-expand", help="CulturaX Stage I: new questions for subdomains below --target, SimHash-deduplicated"
    )
    exp.add_argument("--questions", type=Path, required=True, help=".jsonl or .csv with subdomain_id (classified)")
    exp.add_argument("--target", type=positive_int, required=True, help="questions wanted per UNESCO subdomain")
    exp.add_argument(
        "--examples", type=positive_int, default=3, help="questions of the subdomain shown to the generator (3)"
    )
    exp.add_argument(
        "--refill-rounds", type=count, default=2, help="new calls for subdomains still short after dedup (2)"
    )
    exp.add_argument("--out", type=Path, required=True, help="folder for questions.jsonl and the report")
    llm(exp)
    _attempts(exp)
    _threshold(exp)
    exp.add_argument("--seed", type=count, default=DEFAULT_SEED, help=f"seed of the examples shown ({DEFAULT_SEED})")
    exp.set_defaults(func=run_expand)

    ref = kinds.add_parser(
        "culturax-references", help="CulturaX Stage I: K candidate references, a different critic, feedback rounds"
    )
    ref.add_argument("--questions", type=Path, required=True, help=".jsonl or .csv: id, question [, subdomain_id]")
    ref.add_argument("--critic", required=True, help="the HHH critic's LLM settings, as --generator (another model)")
    ref.add_argument("--critic-base-url", help="the critic's endpoint (default: --base-url)")
    ref.add_argument(
        "--candidates", type=positive_int, default=3, help="candidates per question and reference type (3)"
    )
    ref.add_argument(
        "--accept", type=in_range(1, 10), default=7, help="lowest critic score (1-10) that accepts a candidate (7)"
    )
    ref.add_argument(
        "--feedback-rounds", type=count, default=2, help="re-sampling rounds with the critic's feedback (2)"
    )
    _out(ref, work=True)
    llm(ref)
    _threshold(ref)
    ref.add_argument(
        "--seed", type=count, default=DEFAULT_SEED, help=f"seed of the 80/10/10 split (default {DEFAULT_SEED})"
    )
    ref.set_defaults(func=run_references)


def _out(parser: argparse.ArgumentParser, work: bool) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset folder that review-import will write")
    if work:
        parser.add_argument("--work", type=Path, help="folder for candidates and review files (default: <out>.work)")


def _attempts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-attempts", type=positive_int, default=3, help="attempts per LLM task, with feedback (3)")


def _threshold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold", type=count, default=10, help="SimHash Hamming threshold for near-duplicates (10)"
    )


def _work(args: argparse.Namespace) -> Path:
    from . import workdir

    return args.work or workdir.default_work(args.out)


def _print_review(args: argparse.Namespace, work: Path) -> None:
    from . import workdir

    review_dir = work / workdir.REVIEW
    print(f"review: {review_dir / 'review.csv'} (fill 'decision': accept / reject / edit)")
    print(f"   or Label Studio: import {review_dir / 'labelstudio_tasks.json'}")
    work_flag = f" --work {work}" if args.work else ""
    print(f"then: culturesafe generate review-import --out {args.out}{work_flag} --decisions <review.csv or export>")


def run_descriptions(args: argparse.Namespace) -> int:
    from culturesafe_ext.llm import LLMClient
    from culturesafe_ext.sources import Sources, SourcesSettings, make_search_backend

    from . import descriptions, source_texts
    from .cli import generator_config

    if not args.source and not args.query:
        raise ValueError("generate descriptions: give at least one --source or --query")
    if args.query and not args.search:
        raise ValueError("generate descriptions: --query needs --search (searxng[:URL], tavily or bm25:PATH)")
    work = _work(args)
    work.mkdir(parents=True, exist_ok=True)
    settings = SourcesSettings.load(
        {
            "k": args.k,
            "max_bytes": args.max_bytes,
            "min_chars": args.min_chars,
            "cache_path": args.sources_cache or str(work / "sources.sqlite"),
        }  # fmt: skip
    )
    writer = LLMClient(generator_config(args))
    backend = make_search_backend(args.search, settings) if args.search else source_texts.UrlsOnly()
    sources = Sources(backend, settings)
    urls = [s for s in args.source if s.startswith(("http://", "https://"))]
    files = [Path(s) for s in args.source if s not in urls]
    try:
        texts, rejected, search = source_texts.gather(files, urls, args.query, sources, args.k)
    finally:
        sources.close()
    report = descriptions.generate(
        texts, rejected, work, writer, country=args.country, chunk_chars=args.chunk_chars,
        max_attempts=args.max_attempts, max_tokens=args.max_tokens, threshold=args.threshold,
        version=args.prompt_version, search=search,
    )  # fmt: skip
    stats = report["stats"]
    print(f"sources: {report['sources']['used']} used, {report['sources']['rejected']} rejected")
    if search:
        print(f"search: {search['summary']}")
    print(
        f"{stats['tasks']} LLM calls over source chunks: {stats['complete']} answered, {stats['incomplete']} not; "
        f"{stats['requests']} requests ({stats['sent']} sent, {stats['cached']} cached)"
    )
    if stats["incomplete"]:
        print(
            f"  without a usable reply: {stats['truncated_replies']} replies cut at the token limit (raise "
            f"--max-tokens), {stats['unparseable_replies']} without JSON, {stats['filtered_replies']} withheld by a "
            f"content filter, {stats['failed_requests']} failed requests; each attempt's raw reply is under "
            f"incomplete_tasks in {work / 'generation_report.json'}"
        )
    for source, c in report["per_source"].items():
        print(f"  {source}: {c['chunks']} chunk(s), {c['proposed']} proposed, {c['candidates']} candidates")
    rejected_line = ", ".join(f"{n} {r}" for r, n in report["rejections_by_reason"].items()) or "none"
    print(f"rejections: {rejected_line}")
    print(f"candidates: {report['candidates']['description']}")
    if not report["candidates"]["description"]:  # as `generate adaculturesafe`: a run that produced nothing fails
        from .cli import nothing_generated

        raise ValueError(f"{nothing_generated(report, work / 'generation_report.json')}; rejections: {rejected_line}")
    _print_review(args, work)
    return 0


def _client(args: argparse.Namespace):
    from culturesafe_ext.llm import LLMClient

    from .cli import generator_config

    return LLMClient(generator_config(args))


def run_classify(args: argparse.Namespace) -> int:
    from . import culturax_classify as cc

    items = cc.read_items(args.questions, args.culturax_csv)
    report = cc.classify(
        items, args.out, _client(args), delta=args.delta, max_attempts=args.max_attempts,
        max_tokens=args.max_tokens, version=args.prompt_version, inputs=str(args.questions or args.culturax_csv),
    )  # fmt: skip
    stats = report["stats"]
    print(
        f"{report['questions']} questions: {report['labelled']} labelled at delta {report['delta']} "
        f"({report['multi_label']} with several labels), {len(report['no_label_at_delta'])} with no label >= delta "
        f"(listed in the report), {len(report['failed'])} without a usable reply; "
        f"{report['replies_naming_unknown_subdomains']} replies named an unknown subdomain (rejected, retried); "
        f"{stats['requests']} requests ({stats['sent']} sent, {stats['cached']} cached)"
    )
    if "agreement" in report:
        print(cc.agreement_table(report["agreement"]))
    print(f"wrote {args.out / cc.QUESTIONS} and {args.out / cc.REPORT}")
    return 0


def run_expand(args: argparse.Namespace) -> int:
    from . import culturax_expand as ce

    report = ce.expand(
        args.questions, args.out, _client(args), target=args.target, examples=args.examples,
        threshold=args.threshold, seed=args.seed, max_attempts=args.max_attempts, max_tokens=args.max_tokens,
        refill_rounds=args.refill_rounds, version=args.prompt_version,
    )  # fmt: skip
    print(
        f"{report['questions_before']} questions; {report['generated']} generated, "
        f"{len(report['removed_near_duplicates'])} removed as near-duplicates (Hamming <= {args.threshold}), "
        f"{report['kept']} added"
    )
    print(f"{'id':>3}  {'subdomain':<36} {'before':>6} {'after':>6} {'short':>6}")
    for sid, c in report["per_subdomain"].items():
        print(f"{sid:>3}  {c['name'][:36]:<36} {c['before']:>6} {c['after']:>6} {c['short_of_target']:>6}")
    print(f"wrote {args.out / ce.QUESTIONS} and {args.out / ce.REPORT}")
    return 0


def run_references(args: argparse.Namespace) -> int:
    from culturesafe_ext.llm import LLMClient, LLMConfig

    from . import culturax_references as cr
    from .cli import generator_config

    if args.temperature is None:
        args.temperature = 0.7  # the paper's sampling temperature for the K candidates
    writer = LLMClient(generator_config(args))
    critic_cfg = LLMConfig.from_spec(
        args.critic, "--critic",
        overrides={"base_url": args.critic_base_url or args.base_url, "cache_path": args.cache_path,
                   "concurrency": args.concurrency, "progress": False if args.no_progress else None},
    )  # fmt: skip
    work = _work(args)
    report = cr.generate(
        args.questions, work, writer, LLMClient(critic_cfg), candidates=args.candidates, accept=args.accept,
        feedback_rounds=args.feedback_rounds, max_tokens=args.max_tokens, threshold=args.threshold, seed=args.seed,
        version=args.prompt_version,
    )  # fmt: skip
    stats, sampling = report["stats"], report["rejection_sampling"]
    print(
        f"{stats['tasks']} questions: {stats['complete']} with three accepted references, {stats['incomplete']} "
        f"without; writer {stats['writer_sent']} sent / {stats['writer_cached']} cached, critic "
        f"{stats['critic_sent']} sent / {stats['critic_cached']} cached; {stats['unparseable_replies']} critic "
        f"replies without a score, {stats['failed_requests']} failed writer requests"
    )
    print(cr.card_section(sampling).split("\n\n", 1)[1])
    _print_review(args, work)
    return 0
