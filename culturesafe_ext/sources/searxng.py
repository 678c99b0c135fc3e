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

from culturesafe_ext.sources.http import HttpClient, Refused
from culturesafe_ext.sources.passage import SearchHit
from culturesafe_ext.sources.settings import SourcesSettings
from culturesafe_ext.sources.web_results import hits_of, refused, results_of

HINTS = {
    403: "the instance does not serve JSON: add json to search.formats in its settings.yml "
    "(formats: [html, json] under search:) and restart it",
    404: "no /search here: check the SearXNG base URL (e.g. http://localhost:8888)",
}


class SearxngSearch:
    name = "searxng"
    fetches_pages = True

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
            raise refused(self.name, self.base_url, err, HINTS) from None
        return hits_of(results_of(self.name, response.body), self.name, query, k)

    async def aclose(self) -> None:
        await self.http.aclose()
