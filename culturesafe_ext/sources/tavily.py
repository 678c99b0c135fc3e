"""Search through Tavily's hosted API: ``POST {tavily_url}/search`` with ``Authorization: Bearer $TAVILY_API_KEY``.

Body ``{"query", "max_results", "search_depth", "include_raw_content": false, ...}``; answer
``{"query", "results": [{"title", "url", "content", "score", "raw_content"}], "response_time", ...}``. Another
hosted API is one class like this one: its URL, its body, its key's environment variable, its result fields.
The key is read from the environment when the backend is made and lives only in the request header.
"""

from __future__ import annotations

import json

from culturesafe_ext.sources.base import SearchRefused
from culturesafe_ext.sources.http import HttpClient, Refused, TransientError
from culturesafe_ext.sources.passage import SearchHit, utc_now
from culturesafe_ext.sources.settings import SourcesSettingError, SourcesSettings, api_key

KEY_ENV = "TAVILY_API_KEY"
HINTS = {
    401: f"the key was rejected: set a valid key in {KEY_ENV}",
    403: "the key has no access to this endpoint or plan",
    400: "the request was malformed: check the query and tavily_search_depth",
}


class TavilySearch:
    name = "tavily"

    def __init__(self, settings: SourcesSettings) -> None:
        self.base_url = settings.tavily_url.rstrip("/")
        self.depth = settings.tavily_search_depth
        try:
            key = api_key(KEY_ENV, self.base_url)
        except SourcesSettingError as err:
            raise SearchRefused(f"tavily: {err}") from None
        self.http = HttpClient(settings, headers={"Authorization": f"Bearer {key}"}, secret=key)

    @property
    def identity(self) -> str:
        return f"{self.base_url} depth={self.depth}"

    @property
    def requests(self) -> int:
        return self.http.requests

    async def search(self, query: str, k: int) -> list[SearchHit]:
        body = {"query": query, "max_results": k, "search_depth": self.depth, "include_raw_content": False}
        try:
            response = await self.http.request("POST", f"{self.base_url}/search", json_body=body)
        except Refused as err:
            hint = HINTS.get(err.status)
            suffix = f" -- {hint}" if hint else ""
            raise SearchRefused(f"tavily at {self.base_url} refused: {err}{suffix}") from None
        try:
            results = json.loads(response.body.decode("utf-8"))["results"]
            if not isinstance(results, list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as err:
            raise TransientError(f"tavily answered something that is not its JSON format ({err})") from None
        now, hits = utc_now(), []
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            hits.append(
                SearchHit(
                    backend=self.name,
                    query=query,
                    rank=len(hits) + 1,
                    title=str(item.get("title") or item["url"]),
                    url=item["url"],
                    snippet=str(item.get("content") or ""),
                    score=item.get("score") if isinstance(item.get("score"), (int, float)) else None,
                    retrieved_at=now,
                )
            )
        return hits[:k]

    async def aclose(self) -> None:
        await self.http.aclose()
