"""``culturesafe synthesize``: search-grounded training items in a target lm-eval task's own format.

culturesafe synthesize --task adaculturesafe_knowledge_china --culture China --examples ex.jsonl \\
    --search searxng:http://localhost:8888 --llm openai:gpt-4o-mini --base-url https://api.openai.com/v1 --out synth
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from culturesafe_ext.cli_types import count, in_range, non_negative_float, positive_int

from .pipeline import COMPLETIONS, QUERY_MODES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synthesize",
        help="search-grounded training items in a task's own format (CultureManager)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, help="any lm-eval task name (ours, lm-eval's, or one in --include-path)")
    p.add_argument("--culture", action="append", required=True, help="a culture, e.g. Japan (repeat for several)")
    p.add_argument("--search", required=True, help="searxng[:BASE_URL], tavily or bm25:PATH")
    p.add_argument("--llm", required=True, help="openai:MODEL (with --base-url), hf:FOLDER, or a JSON object")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--include-path", help="folder of task YAMLs (as lm_eval --include_path)")
    p.add_argument("--metadata", help="JSON object handed to the task (as lm_eval --metadata)")
    p.add_argument("--examples", type=Path, help="JSONL of example docs, when the task has no non-evaluated split")
    p.add_argument("--queries", choices=sorted(QUERY_MODES), default="both", help="query types (both)")
    p.add_argument("--n-specific", type=count, default=5, help="task-specific queries per culture (5)")
    p.add_argument("--n-agnostic", type=count, default=5, help="task-agnostic queries per culture (5)")
    p.add_argument("--k", type=positive_int, default=3, help="search results per query (3)")
    p.add_argument("--max-passages", type=positive_int, help="passages per culture and query type (default: all)")
    p.add_argument("--per-passage", type=positive_int, default=2, help="docs the LLM writes per passage (2)")
    p.add_argument(
        "--completion",
        choices=COMPLETIONS,
        default="auto",
        help="target: the task's doc_to_target; answer: an LLM-written respectful answer grounded in the passage "
        "(auto: answer for our safety tasks, whose target is the custom, else target)",
    )
    p.add_argument("--judge", help="judge settings (as --llm) for rejection sampling of written answers")
    p.add_argument("--min-respect", type=in_range(1, 10), help="with --judge: keep answers scored >= this (1-10)")
    p.add_argument(
        "--language",
        default="auto",
        help="passages must be in this language (ISO 639-1, py3langid); auto: the example docs' (default); any",
    )
    p.add_argument("--threshold", type=count, default=10, help="SimHash Hamming radius: near-duplicates, leakage (10)")
    p.add_argument("--seed", type=count, default=1234, help="seed of the gold-letter balance (1234)")
    p.add_argument("--max-attempts", type=positive_int, default=2, help="attempts per LLM task (2)")
    p.add_argument("--max-tokens", type=positive_int, default=2048, help="tokens per reply (2048)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (key: env CULTURESAFE_JUDGE_API_KEY)")
    p.add_argument("--concurrency", type=positive_int, help="in flight: LLM requests (32), searches (16), pages (16)")
    p.add_argument("--temperature", type=non_negative_float, help="sampling temperature (default 0)")
    p.add_argument("--cache-path", help="sqlite cache of every LLM reply (default: the culturesafe cache dir)")
    p.add_argument("--sources-cache", help="sqlite cache of searches and pages (default: the culturesafe cache dir)")
    p.add_argument("--no-fetch", action="store_true", help="web backends: keep result snippets, fetch no page")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from culturesafe_ext.data.task_format import load_task_format
    from culturesafe_ext.sources import Sources, SourcesSettings, make_search_backend

    from .llm import make_client, make_judge
    from .pipeline import SynthesisSettings, answers_needed
    from .run import synthesize

    metadata = _metadata(args.metadata)
    overrides = {
        "base_url": args.base_url,
        "concurrency": args.concurrency,
        "temperature": args.temperature,
        "cache_path": args.cache_path,
        "progress": False if args.no_progress else None,
    }
    client = make_client(args.llm, overrides)
    client.check_cache()
    settings = SourcesSettings.load(
        {
            "k": args.k,
            "concurrency": args.concurrency,
            "cache_path": args.sources_cache,
            "fetch_pages": False if args.no_fetch else None,
        }
    )
    backend = make_search_backend(args.search, settings)
    fmt = load_task_format(args.task, args.include_path, metadata, args.examples)
    synth = SynthesisSettings(
        cultures=tuple(dict.fromkeys(c.strip() for c in args.culture if c.strip())),
        queries=args.queries,
        n_specific=args.n_specific,
        n_agnostic=args.n_agnostic,
        per_passage=args.per_passage,
        k=args.k,
        max_passages=args.max_passages,
        threshold=args.threshold,
        seed=args.seed,
        max_attempts=args.max_attempts,
        max_tokens=args.max_tokens,
        completion=args.completion,
        min_respect=args.min_respect,
        language=args.language,
    )
    if (args.judge is None) != (args.min_respect is None):
        raise ValueError("--judge and --min-respect go together (rejection sampling of written answers)")
    judge = make_judge(args.judge, {"progress": False if args.no_progress else None}) if args.judge else None
    answers_needed(fmt, synth.completion)  # a bad --completion fails before any request
    sources = Sources(backend, settings)  # opened last: an error above leaves nothing open
    task_info = {"include_path": args.include_path, "metadata": metadata}
    try:
        report = synthesize(fmt, client, sources, synth, args.out, task_info, judge=judge)
    finally:
        sources.close()
    t, leak = report["tokens"], report["leakage"]
    stats = [s["stats"] for s in report["stages"].values()]
    total = {k: sum(s[k] for s in stats) for k in ("requests", "sent", "cached", "unparseable_replies")}
    print(
        f"LLM: {total['requests']} requests ({total['sent']} sent, {total['cached']} cached), "
        f"{total['unparseable_replies']} unparseable replies; tokens "
        f"{t['prompt_tokens']}+{t['completion_tokens']} ({t['new_prompt_tokens']}+{t['new_completion_tokens']} new)"
        + (f", cost ${t['cost']:.4f}" if t.get("cost") is not None else "")
    )
    print(f"search: {report['retrieval']['summary']}")
    print(
        f"docs: {report['generated_docs']} generated, {len(report['removed_near_duplicates'])} near-duplicates, "
        f"{len(leak['removed'])} leaked removed (of {leak['evaluation_docs']} evaluation docs compared), "
        f"{leak['leaked_in_output']} leaked in output"
    )
    for item in leak["removed"]:
        print(f"  leaked: {item['id']} ~ evaluation doc {item['twin_id']} ({item['how']})")
    rejected = ", ".join(f"{n} {r}" for r, n in report["rejections"].items()) or "none"
    print(f"rejected: {rejected}")
    print(f"{report['items']} items per culture {report['counts']['per_culture']} -> {args.out}")
    return 0


def _metadata(text: str | None) -> dict | None:
    """``--metadata`` as lm_eval takes it: a JSON object, or nothing."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--metadata: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError("--metadata: expected a JSON object")
    return value
