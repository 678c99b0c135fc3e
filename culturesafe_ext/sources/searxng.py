"""Search through a self-hosted SearXNG instance's JSON API: ``GET {base_url}/search?q=...&format=json``.

Why SearXNG: a meta-search engine anyone can run, with no key, that asks many engines at once. Start the
official container image and enable the JSON output (it is off by default, and the instance answers 403)::

    mkdir -p searxng && docker run --rm -d -p 8888:8080 -v "$PWD/searxng:/etc/searxng" searxng/searxng
    # then in searxng/settings.yml (written on first start) add json to the output formats:
    #   search:
    #     formats: [html, json]
    docker restart <container>
    culturesafe ... --search searxng:http://localhost:8888

The answer is ``{"query", "number_of_results", "results": [{"url", "title", "content", "engine", "engines",
"score", "category", ...}], "answers", "infoboxes", "suggestions", "unresponsive_engines"}``; only ``results`` is
read (their order is SearXNG's ranking).
"""

from __future__ import annotations

import json

from culturesafe_ext.sources.base import SearchRefused
from culturesafe_ext.sources.http import HttpClient, Refused, TransientError
from culturesafe_ext.sources.passage import SearchHit, utc_now
from culturesafe_ext.sources.settings import SourcesSettings

HINTS = {
    403: "the instance does not serve JSON: add json to search.formats in its settings.yml "
    "(formats: [html, json] under search:) and restart it",
    404: "no /search here: check the SearXNG base URL (e.g. http://localhost:8888)",
}


class SearxngSearch:
    name = "searxng"

    def __init__(self, base_url: str, settings: SourcesSettings) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = HttpClient(settings, headers={"Accept": "application/json"})

    @property
    def identity(self) -> str:
        return self.base_url

    @property
    def requests(self) -> int:
        return self.http.requests

    async def search(self, query: str, k: int) -> list[SearchHit]:
        url = f"{self.base_url}/search"
        try:
            response = await self.http.request("GET", url, params={"q": query, "format": "json"})
        except Refused as err:
            hint = HINTS.get(err.status)
            suffix = f" -- {hint}" if hint else ""
            raise SearchRefused(f"searxng at {self.base_url} refused: {err}{suffix}") from None
        try:
            results = _json(response.body)["results"]
            if not isinstance(results, list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as err:
            raise TransientError(f"searxng answered something that is not its JSON format ({err})") from None
        now, hits = utc_now(), []
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue  # an answer/infobox-like entry without a page: nothing to fetch
            hits.append(
                SearchHit(
                    backend=self.name,
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

    async def aclose(self) -> None:
        await self.http.aclose()


def _json(body: bytes) -> dict:
    value = json.loads(body.decode("utf-8"))
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value
