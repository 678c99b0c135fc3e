"""``--search BACKEND[:ARG]`` parsed in one place: ``searxng[:BASE_URL]``, ``tavily[:BASE_URL]``, ``bm25:PATH``."""

from __future__ import annotations

from culturesafe_ext.sources.base import SearchBackend
from culturesafe_ext.sources.settings import SourcesSettingError, SourcesSettings

BACKENDS = ("searxng", "tavily", "bm25")
HOW = (
    "--search takes searxng[:BASE_URL] (a self-hosted SearXNG with json in search.formats), "
    "tavily (key in TAVILY_API_KEY) or bm25:PATH (a local .jsonl/.parquet corpus with id, title, text)"
)


def parse_search_spec(spec: str) -> tuple[str, str | None]:
    """``"bm25:/data/wiki.jsonl"`` -> ``("bm25", "/data/wiki.jsonl")``; ``"searxng"`` -> ``("searxng", None)``."""
    name, _, arg = (spec or "").strip().partition(":")
    name = name.strip().lower()
    if name not in BACKENDS:
        raise SourcesSettingError(f"unknown search backend {name!r} in {spec!r}: {HOW}")
    arg = arg.strip() or None
    if name == "bm25" and arg is None:
        raise SourcesSettingError(f"bm25 needs a corpus path: --search bm25:PATH ({HOW})")
    if name in ("searxng", "tavily") and arg is not None and not arg.startswith(("http://", "https://")):
        raise SourcesSettingError(f"{name}: {arg!r} is not an http(s) base URL")
    return name, arg


def make_search_backend(spec: str, settings: SourcesSettings | None = None) -> SearchBackend:
    """The backend a ``--search`` spec names; :class:`SearchRefused` when it cannot be used (no key, bad corpus)."""
    settings = settings or SourcesSettings.load()
    name, arg = parse_search_spec(spec)
    if name == "searxng":
        from culturesafe_ext.sources.searxng import SearxngSearch

        return SearxngSearch(arg or settings.searxng_url, settings)
    if name == "tavily":
        from culturesafe_ext.sources.tavily import TavilySearch

        return TavilySearch(settings.model_copy(update={"tavily_url": arg}) if arg else settings)
    from culturesafe_ext.sources.bm25_corpus import Bm25Search

    return Bm25Search(arg, settings.resolved_index_dir())
