"""The papers' curation steps as ``culturesafe generate`` sub-commands: ``descriptions`` (AdaCultureSafe) and
``culturax-classify`` / ``culturax-expand`` / ``culturax-references`` (AlignCultura's Stage I).

Each step is resumable: every LLM reply goes through the one client's sqlite cache, every fetch and search through
the sources cache (``<work>/sources.sqlite`` unless ``--sources-cache`` says otherwise).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_parsers(kinds: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    desc = kinds.add_parser(
        "descriptions", help="cultural descriptions, one custom each, from source guides (files, URLs, search)"
    )
    desc.add_argument(
        "--source", action="append", default=[], metavar="PATH_OR_URL",
        help="a local .html/.md/.txt/.pdf file or an http(s) URL (repeatable)",
    )  # fmt: skip
    desc.add_argument("--query", action="append", default=[], help="a search query (repeatable; needs --search)")
    desc.add_argument("--search", help="searxng[:BASE_URL], tavily or bm25:PATH (the sources package's backends)")
    desc.add_argument("--k", type=int, default=None, help="results per query (sources setting k, default 10)")
    desc.add_argument("--country", required=True, help="the country the sources describe (ISO 3166 name)")
    desc.add_argument("--chunk-chars", type=int, default=6000, help="characters of source text per LLM call (6000)")
    desc.add_argument("--max-bytes", type=int, default=None, help="size cap of a page or file (default 2000000)")
    desc.add_argument("--min-chars", type=int, default=None, help="shortest main text kept (default 200)")
    desc.add_argument("--sources-cache", help="sqlite cache of fetches and searches (default: <work>/sources.sqlite)")
    common(desc)
    desc.set_defaults(func=run_descriptions)


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
    for source, c in report["per_source"].items():
        print(f"  {source}: {c['chunks']} chunk(s), {c['proposed']} proposed, {c['candidates']} candidates")
    rejected_line = ", ".join(f"{n} {r}" for r, n in report["rejections_by_reason"].items()) or "none"
    print(f"rejections: {rejected_line}")
    print(f"candidates: {report['candidates']['description']}")
    _print_review(args, work)
    return 0
