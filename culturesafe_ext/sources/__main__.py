"""``python -m culturesafe_ext.sources "query" ... --search SPEC [-k N]``: passages as JSON lines, summary on stderr."""

from __future__ import annotations

import argparse
import sys

from culturesafe_ext.cli_types import positive_int
from culturesafe_ext.sources import (
    SearchRefused,
    SourceCacheError,
    Sources,
    SourcesSettingError,
    SourcesSettings,
    make_search_backend,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m culturesafe_ext.sources", description=__doc__)
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--search", required=True, help="searxng[:BASE_URL] | tavily | bm25:PATH")
    parser.add_argument("-k", type=positive_int, default=None, help="results per query")
    parser.add_argument("--concurrency", type=positive_int, default=None)
    parser.add_argument("--no-fetch", action="store_true", help="keep web results' snippets, fetch no pages")
    args = parser.parse_args(argv)
    try:
        settings = SourcesSettings.load(
            {"k": args.k, "concurrency": args.concurrency, "fetch_pages": False if args.no_fetch else None}
        )
        sources = Sources(make_search_backend(args.search, settings), settings)
        try:
            retrieval = sources.retrieve_sync(args.queries)
        finally:
            sources.close()
    except (SearchRefused, SourcesSettingError, SourceCacheError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for passage in retrieval.passages:
        print(passage.model_dump_json())
    print(retrieval.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
