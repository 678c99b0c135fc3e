"""The texts ``generate descriptions`` decomposes: local files, URLs and search results, each with provenance.

Why here and not a second fetcher: URLs and searches go through :class:`culturesafe_ext.sources.Sources` (its page
fetcher, size cap, trafilatura extractor and sqlite cache, so a resumed run fetches nothing twice); a local file is
read here with the same extractors (trafilatura for HTML, :func:`~culturesafe_ext.sources.fetch.pdf_text` for PDF)
or as it is (Markdown, text). Every source that gives
no text is a counted :class:`SourceRejection` with a fixed reason ("over the size cap", "pdf has no text", ...).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path

from culturesafe_ext.sources import Rejection, SearchHit, SearchRefused, Sources, SourcesSettings, content_hash
from culturesafe_ext.sources.fetch import NO_MAIN_TEXT, NOT_TEXT, OVER_SIZE_CAP, PageRejected, extract_text, pdf_text
from culturesafe_ext.sources.passage import utc_now

HTML_SUFFIXES = (".html", ".htm", ".xhtml")
TEXT_SUFFIXES = (".md", ".markdown", ".txt")
NOT_FOUND = "no such file"


@dataclass(frozen=True)
class SourceText:
    """One source's main text and where it came from (kept through to the published rows and card)."""

    source_id: str  # the URL or the file path as given
    kind: str  # "file", "url" or "search"
    title: str
    text: str
    content_hash: str
    retrieved_at: str
    backend: str = ""  # search backend ("searxng", "bm25", ...) for search results
    query: str = ""


@dataclass(frozen=True)
class SourceRejection:
    source_id: str
    kind: str
    reason: str
    detail: str


class UrlsOnly:
    """The search backend of a run without ``--search``: URLs are fetched, no query is ever asked."""

    name = "url"
    fetches_pages = True
    identity = ""
    requests = 0

    async def search(self, query: str, k: int) -> list[SearchHit]:
        raise SearchRefused("no --search backend given: --query needs one")

    async def aclose(self) -> None:
        return None


def read_file(path: Path, settings: SourcesSettings) -> SourceText:
    """A local file's main text, or :class:`PageRejected` with the reason it gives none."""
    if not path.is_file():
        raise PageRejected(NOT_FOUND, f"{path}: no such file")
    size = path.stat().st_size
    if size > settings.max_bytes:
        raise PageRejected(OVER_SIZE_CAP, f"{path}: {size} bytes > max_bytes {settings.max_bytes}")
    suffix = path.suffix.lower()
    title = path.name
    if suffix == ".pdf":
        text, found = pdf_text(path.read_bytes(), str(path))
        title = found or title
    elif suffix in HTML_SUFFIXES:
        text, found = extract_text(path.read_bytes(), "text/html", None, path.resolve().as_uri())
        title = found or title
    elif suffix in TEXT_SUFFIXES:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    else:
        raise PageRejected(NOT_TEXT, f"{path}: expected .html, .md, .txt or .pdf")
    if len(text) < max(1, settings.min_chars):
        chars = f"{len(text)} characters of main text (min_chars {settings.min_chars})"
        raise PageRejected(NO_MAIN_TEXT, f"{path}: {chars}")
    return SourceText(str(path), "file", title, text, content_hash(text), utc_now())


async def _gather(
    files: list[Path], urls: list[str], queries: list[str], sources: Sources, k: int | None
) -> tuple[list[SourceText], list[SourceRejection], dict]:
    texts: list[SourceText] = []
    rejected: list[SourceRejection] = []
    for path in files:
        try:
            texts.append(read_file(path, sources.settings))
        except PageRejected as err:
            rejected.append(SourceRejection(str(path), "file", err.reason, err.detail))

    async def one_url(url: str) -> SourceText | SourceRejection:
        hit = SearchHit(backend="url", query="", rank=0, title=url, url=url, retrieved_at=utc_now())
        try:
            p = await sources.passage(hit)
        except PageRejected as err:
            return SourceRejection(url, "url", err.reason, err.detail)
        return SourceText(url, "url", p.title, p.text, p.content_hash, p.retrieved_at)

    for outcome in await asyncio.gather(*(one_url(u) for u in urls)):
        (texts if isinstance(outcome, SourceText) else rejected).append(outcome)
    search = {}
    if queries:
        retrieval = await sources.retrieve(queries, k)
        for p in retrieval.passages:
            texts.append(
                SourceText(
                    p.url or p.corpus_id or "",
                    "search",
                    p.title,
                    p.text,
                    p.content_hash,
                    p.retrieved_at,
                    p.backend,
                    p.query,
                )  # fmt: skip
            )
        rejected += [_from_search(r) for r in retrieval.rejections]
        search = {"summary": retrieval.summary(), "searches_sent": retrieval.searches_sent}
    return texts, rejected, search


def _from_search(r: Rejection) -> SourceRejection:
    return SourceRejection(r.url or f"query {r.query!r}", "search", r.reason, r.detail)


def gather(
    files: list[Path], urls: list[str], queries: list[str], sources: Sources, k: int | None = None
) -> tuple[list[SourceText], list[SourceRejection], dict]:
    """Every source's text (the same text found twice is kept once) and every rejection, with the search summary."""
    box: list = []

    async def run() -> None:
        try:
            box.append(await _gather(files, urls, queries, sources, k))
        finally:
            await sources.aclose()

    from culturesafe_ext.sources.http import run_sync

    run_sync(run)
    texts, rejected, search = box[0]
    seen: dict[str, str] = {}
    unique = []
    for t in texts:
        if t.content_hash in seen:
            rejected.append(SourceRejection(t.source_id, t.kind, "same text as another source", seen[t.content_hash]))
            continue
        seen[t.content_hash] = t.source_id
        unique.append(t)
    return unique, rejected, search


def as_dict(item: SourceText | SourceRejection) -> dict:
    return asdict(item)
