"""Sources: web search (self-hosted SearXNG, hosted Tavily), a local BM25 corpus, page fetching, a cache, and
provenance for every passage. Pipelines use::

    settings = SourcesSettings.load({"concurrency": 32})
    sources = Sources(make_search_backend("searxng:http://localhost:8888", settings), settings)
    retrieval = sources.retrieve_sync(["Japanese gift-giving etiquette"], k=5)   # or: await sources.retrieve(...)
    retrieval.passages, retrieval.rejections, retrieval.summary()
"""

from culturesafe_ext.sources.base import SearchBackend, SearchRefused
from culturesafe_ext.sources.bm25_corpus import CorpusError
from culturesafe_ext.sources.cache import SourceCache, SourceCacheError
from culturesafe_ext.sources.passage import Passage, Rejection, SearchHit, content_hash
from culturesafe_ext.sources.retrieve import Retrieval, Sources
from culturesafe_ext.sources.settings import SourcesSettingError, SourcesSettings
from culturesafe_ext.sources.spec import make_search_backend, parse_search_spec

__all__ = [
    "CorpusError",
    "Passage",
    "Rejection",
    "Retrieval",
    "SearchBackend",
    "SearchHit",
    "SearchRefused",
    "SourceCache",
    "SourceCacheError",
    "Sources",
    "SourcesSettingError",
    "SourcesSettings",
    "content_hash",
    "make_search_backend",
    "parse_search_spec",
]
