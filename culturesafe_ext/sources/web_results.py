"""What every hosted search API's answer goes through: its refusal, its ``results`` list, the hits from it.

SearXNG and Tavily (and the next JSON API) differ in their request and their error hints; their answers share
``{"results": [{"url", "title", "content", "score", ...}]}``. One place for the error wording and the hit fields.
"""

from __future__ import annotations

import json

from culturesafe_ext.sources.base import SearchRefused
from culturesafe_ext.sources.http import Refused, TransientError
from culturesafe_ext.sources.passage import SearchHit, utc_now


def refused(backend: str, base_url: str, err: Refused, hints: dict[int, str]) -> SearchRefused:
    """The one-line error of a 4xx that cannot succeed, with the backend's hint for that status."""
    hint = hints.get(err.status)
    return SearchRefused(f"{backend} at {base_url} refused: {err}" + (f" -- {hint}" if hint else ""))


def results_of(backend: str, body: bytes) -> list:
    """The answer's ``results`` list; anything else is a transient error (retried, then reported)."""
    try:
        value = json.loads(body.decode("utf-8"))
        if not isinstance(value, dict):
            raise TypeError("not a JSON object")
        results = value["results"]
        if not isinstance(results, list):
            raise TypeError("results is not a list")
    except (ValueError, KeyError, TypeError) as err:
        raise TransientError(f"{backend} answered something that is not its JSON format ({err})") from None
    return results


def hits_of(results: list, backend: str, query: str, k: int) -> list[SearchHit]:
    """The first ``k`` results that name a page, in the API's order (answer / infobox entries have no url)."""
    now, hits = utc_now(), []
    for item in results:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        hits.append(
            SearchHit(
                backend=backend,
                query=query,
                rank=len(hits) + 1,
                title=str(item.get("title") or item["url"]),
                url=item["url"],
                snippet=str(item.get("content") or ""),
                engine=item.get("engine") if isinstance(item.get("engine"), str) else None,
                score=item.get("score") if isinstance(item.get("score"), (int, float)) else None,
                retrieved_at=now,
            )
        )
        if len(hits) == k:
            break
    return hits
