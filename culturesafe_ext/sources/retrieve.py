"""Queries in, passages with provenance out: :class:`Sources` runs searches and page fetches concurrently, through
the cache, and accounts for every query and page that gave no passage.

Why one object: a pipeline (synthesis, description curation) hands over its queries and gets back passages and
a :class:`Retrieval` report; concurrency (``concurrency`` searches in flight to the backend, and as many page
fetches, each limit apart: they wait on different servers, and one shared limit made a page wait behind searches),
caching and the counting of rejections are decided here once. A search backend that refuses
(:class:`SearchRefused`) stops the run at once; what was retrieved before it is in the cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from culturesafe_ext.sources import extract_pool
from culturesafe_ext.sources.base import SearchBackend, SearchRefused
from culturesafe_ext.sources.cache import SourceCache, entry_key
from culturesafe_ext.sources.fetch import EXTRACTOR, PageFetcher, PageRejected
from culturesafe_ext.sources.http import run_sync
from culturesafe_ext.sources.passage import Passage, Rejection, SearchHit
from culturesafe_ext.sources.settings import SourcesSettings

log = logging.getLogger("culturesafe.sources")
OnQuery = Callable[[str, list[Passage]], None]
NO_RESULTS, SEARCH_FAILED, EMPTY_SNIPPET = "no results", "search failed", "empty snippet"
QUERIES_IN_PROGRESS = 2  # x concurrency: see Sources.retrieve


@dataclass
class Retrieval:
    """Passages in query order, then rank; every query or page that gave none, with its reason; what was sent."""

    passages: list[Passage] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    searches_sent: int = 0
    searches_cached: int = 0
    pages_fetched: int = 0
    pages_cached: int = 0
    requests: int = 0  # HTTP attempts, retries included

    def rejection_counts(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejections)

    def summary(self) -> str:
        rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejection_counts().items())) or "none"
        return (
            f"{len(self.passages)} passages; searches: {self.searches_sent} sent, {self.searches_cached} cached; "
            f"pages: {self.pages_fetched} fetched, {self.pages_cached} cached; {self.requests} HTTP requests; "
            f"rejected: {rejected}"
        )


class Sources:
    """A search backend, a page fetcher and the cache (see the module docstring)."""

    def __init__(self, backend: SearchBackend, settings: SourcesSettings, cache: SourceCache | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.fetcher = PageFetcher(settings)
        self.cache = cache if cache is not None or not settings.cache else SourceCache(settings.resolved_cache_path())
        self._sems: dict[str, asyncio.Semaphore] = {}  # "search", "page": created in the running loop
        self._pages: dict[str, asyncio.Future] = {}
        self._stats = Retrieval()
        self._refused: SearchRefused | None = None

    @property
    def requests(self) -> int:
        return self.backend.requests + self.fetcher.requests

    @property
    def fetches_pages(self) -> bool:
        """Whether hits become passages through fetched pages (a web backend, ``fetch_pages`` on)."""
        return self.settings.fetch_pages and self.backend.fetches_pages

    def warm(self) -> list[Future]:
        """Start the page extractors now when pages will be fetched (a pipeline calls it before its first LLM
        stage: the workers start meanwhile); the futures are done once they are ready."""
        if not self.fetches_pages:
            return []
        return extract_pool.warm(self.settings.extract_workers)

    async def search(self, query: str, k: int | None = None) -> list[SearchHit]:
        """Up to ``k`` hits for ``query``: from the cache, else from the backend (and cached)."""
        k = k or self.settings.k
        key = entry_key("search", backend=self.backend.name, identity=self.backend.identity, query=query, k=k)
        stored = self.cache.get(key) if self.cache is not None else None
        if stored is not None:
            self._stats.searches_cached += 1
            return [SearchHit.model_validate(h) for h in stored]
        async with self._semaphore("search"):
            if self._refused is not None:  # another query was refused while this one waited: send nothing
                raise self._refused
            try:
                hits = await self.backend.search(query, k)
            except SearchRefused as err:
                self._refused = err
                raise
        self._stats.searches_sent += 1
        await self._store(key, "search", [h.model_dump() for h in hits])
        return hits

    async def passage(self, hit: SearchHit) -> Passage:
        """The hit's passage: a local corpus's text, the fetched page's main text, or the snippet when
        ``fetch_pages`` is off; :class:`PageRejected` when it gives none."""
        if hit.text is not None:
            return Passage.of(hit, hit.text)
        if not self.settings.fetch_pages or hit.url is None:
            if not hit.snippet.strip():
                raise PageRejected(EMPTY_SNIPPET, f"{hit.url or hit.corpus_id}: the result has no snippet")
            return Passage.of(hit, hit.snippet)
        page = await self._page(hit.url)
        return Passage.of(
            hit, page["text"], title=page["title"], retrieved_at=page["retrieved_at"], language=page.get("language")
        )

    async def _page(self, url: str) -> dict:
        """Each URL is fetched once per process even when several queries find it at the same time."""
        future = self._pages.get(url)
        if future is None:
            future = self._pages[url] = asyncio.ensure_future(self._fetch_page(url))
        return await asyncio.shield(future)

    async def _fetch_page(self, url: str) -> dict:
        s = self.settings
        key = entry_key("page", url=url, max_bytes=s.max_bytes, min_chars=s.min_chars, extractor=EXTRACTOR)
        stored = self.cache.get(key) if self.cache is not None else None
        if stored is not None:
            self._stats.pages_cached += 1
            if "rejected" in stored:
                raise PageRejected(stored["rejected"], stored["detail"])
            return stored
        try:
            page = await self.fetcher.fetch(url, self._semaphore("page"))
        except PageRejected as err:
            self._stats.pages_fetched += 1
            if err.final:
                await self._store(key, "page", {"rejected": err.reason, "detail": err.detail})
            raise
        self._stats.pages_fetched += 1
        await self._store(key, "page", page)
        return page

    async def _store(self, key: str, kind: str, value: object) -> None:
        """Cache an answer and go on once it is committed (a kill after this loses nothing that was used)."""
        if self.cache is not None:
            await asyncio.wrap_future(self.cache.put(key, kind, value))

    async def retrieve(
        self, queries: Sequence[str], k: int | None = None, on_query: OnQuery | None = None
    ) -> Retrieval:
        """Search every distinct query and turn every hit into a passage, concurrently; a refusal stops all.

        ``on_query(query, passages)``: called as each query's passages are in (a pipeline starts its next stage
        on them at once); the :class:`Retrieval` still lists every passage in query order."""
        self._stats, before, self._refused = Retrieval(), self.requests, None
        unique = list(dict.fromkeys(queries))
        # at most 2 x ``concurrency`` queries in progress: as many as can be searched at once, and as many again
        # fetching their pages, so both limits stay full; a query's pages are still fetched soon after its search,
        # so its passages are in early (``on_query``) instead of behind every other query's search. With 1 x,
        # queries in their search held slots that pages needed (pages in flight 20-28 of 32; bench_synthesize:
        # median 0.73-0.77 -> 0.80-0.81); with 8 x, searches ran ahead of pages (0.74-0.79).
        started = asyncio.Semaphore(QUERIES_IN_PROGRESS * self.settings.concurrency)

        async def one(query: str) -> tuple[list[Passage], list[Rejection]]:
            async with started:
                return await self._one_query(query, k, on_query)

        tasks = [asyncio.ensure_future(one(q)) for q in unique]
        try:
            results = await asyncio.gather(*tasks)
        except SearchRefused:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        stats = self._stats
        for passages, rejections in results:
            stats.passages.extend(passages)
            stats.rejections.extend(rejections)
        stats.requests = self.requests - before
        return stats

    async def _one_query(
        self, query: str, k: int | None, on_query: OnQuery | None = None
    ) -> tuple[list[Passage], list[Rejection]]:
        try:
            hits = await self.search(query, k)
        except SearchRefused:
            raise
        except Exception as err:  # retries ran out: counted, not cached, asked again on a re-run
            log.warning("sources: search for %r failed: %s", query, err)
            return [], [Rejection(reason=SEARCH_FAILED, detail=str(err), query=query)]
        if not hits:
            return [], [Rejection(reason=NO_RESULTS, detail=f"{self.backend.name} found nothing", query=query)]
        outcomes = await asyncio.gather(*(self.passage(h) for h in hits), return_exceptions=True)
        passages, rejections = [], []
        for hit, outcome in zip(hits, outcomes, strict=True):
            if isinstance(outcome, Passage):
                passages.append(outcome)
            elif isinstance(outcome, PageRejected):
                rejections.append(Rejection(reason=outcome.reason, detail=outcome.detail, query=query, url=hit.url))
            else:
                raise outcome
        if on_query is not None:
            on_query(query, passages)
        return passages, rejections

    def retrieve_sync(self, queries: Sequence[str], k: int | None = None) -> Retrieval:
        """:meth:`retrieve` from plain code (or a notebook's running loop); closes the HTTP sessions after."""
        box: list[Retrieval] = []

        async def run() -> None:
            try:
                box.append(await self.retrieve(queries, k))
            finally:
                await self.aclose()

        run_sync(run)
        return box[0]

    def _semaphore(self, kind: str) -> asyncio.Semaphore:
        if kind not in self._sems:
            self._sems[kind] = asyncio.Semaphore(self.settings.concurrency)
        return self._sems[kind]

    async def aclose(self) -> None:
        """Close the HTTP sessions (the cache stays open: :meth:`close` closes it)."""
        await self.backend.aclose()
        await self.fetcher.aclose()
        self._sems, self._pages = {}, {}

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            if self.cache.problem:
                log.warning("sources: %s", self.cache.problem)
