"""Search through Tavily's hosted API: ``POST {tavily_url}/search`` with ``Authorization: Bearer $TAVILY_API_KEY``.

Body ``{"query", "max_results", "search_depth", "include_raw_content": false, ...}``; answer
``{"query", "results": [{"title", "url", "content", "score", "raw_content"}], "response_time", ...}``. Another
hosted API is one class like this one: its URL, its body, its key's environment variable, its result fields.
The key is read from the environment when the backend is made and lives only in the request header.
"""

from __future__ import annotations

from culturesafe_ext.sources.base import SearchRefused
from culturesafe_ext.sources.http import HttpClient, Refused
from culturesafe_ext.sources.passage import SearchHit
from culturesafe_ext.sources.settings import SourcesSettingError, SourcesSettings, api_key
from culturesafe_ext.sources.web_results import hits_of, refused, results_of

KEY_ENV = "TAVILY_API_KEY"
HINTS = {
    401: f"the key was rejected: set a valid key in {KEY_ENV}",
    403: "the key has no access to this endpoint or plan",
    400: "the request was malformed: check the query and tavily_search_depth",
}


class TavilySearch:
    name = "tavily"
    fetches_pages = True

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
            raise refused(self.name, self.base_url, err, HINTS) from None
        return hits_of(results_of(self.name, response.body), self.name, query, k)

    async def aclose(self) -> None:
        await self.http.aclose()
