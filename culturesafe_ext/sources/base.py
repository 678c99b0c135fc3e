"""The one interface every search backend implements, and the error that stops a run.

Why a protocol and not a base class: a backend is three things (a name, an identity that keys the cache,
``search``), and a hosted API is then one small class (see :mod:`culturesafe_ext.sources.tavily`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from culturesafe_ext.sources.passage import SearchHit


class SearchRefused(RuntimeError):
    """The search backend refused (400/401/403/404, a missing key, an unusable corpus): no query can succeed, so
    the run stops at once. The message is one line, names the backend, and carries no key."""


@runtime_checkable
class SearchBackend(Protocol):
    name: str  # "searxng", "tavily", "bm25": the provenance's ``backend``
    fetches_pages: bool  # web results whose pages are fetched (True), or hits that carry their text (a corpus)

    @property
    def identity(self) -> str:
        """What, besides the query and k, decides the results (base URL, corpus hash): part of the cache key."""
        ...

    @property
    def requests(self) -> int:
        """HTTP attempts sent so far (0 for local corpora)."""
        ...

    async def search(self, query: str, k: int) -> list[SearchHit]:
        """Up to ``k`` hits, best first; :class:`SearchRefused` when no query can succeed."""
        ...

    async def aclose(self) -> None: ...
