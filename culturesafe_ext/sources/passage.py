"""What a search returns and what a pipeline gets: :class:`SearchHit` and :class:`Passage`, each with provenance.

Why one model for every backend: a synthesized training item carries the passage it was grounded in, and the
dataset card counts by backend and source domain; so backend, query, url or corpus id, title, retrieval time and
the text's sha256 travel with every passage, whichever backend found it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict


def content_hash(text: str) -> str:
    """sha256 of the UTF-8 text: the passage's identity in provenance and de-duplication."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_now() -> str:
    """Retrieval time as an ISO 8601 UTC string (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class SearchHit(BaseModel):
    """One search result. ``text`` is set only by local corpora, which hold the whole document (no fetch needed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    query: str
    rank: int
    title: str
    url: str | None = None
    corpus_id: str | None = None
    snippet: str = ""
    engine: str | None = None  # which engine behind a meta-search found it (SearXNG's ``engine``)
    score: float | None = None
    text: str | None = None
    retrieved_at: str


class Passage(BaseModel):
    """A text a pipeline may ground on, with where it came from (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    query: str
    rank: int
    url: str | None
    corpus_id: str | None
    title: str
    text: str
    retrieved_at: str  # when the text itself was retrieved (a cached page keeps its first retrieval time)
    content_hash: str
    language: str | None = None  # a fetched page's, its opening's by py3langid (sources.language); else None

    @classmethod
    def of(
        cls,
        hit: SearchHit,
        text: str,
        title: str | None = None,
        retrieved_at: str | None = None,
        language: str | None = None,
    ) -> Passage:
        return cls(
            backend=hit.backend,
            query=hit.query,
            rank=hit.rank,
            url=hit.url,
            corpus_id=hit.corpus_id,
            title=title or hit.title,
            text=text,
            retrieved_at=retrieved_at or hit.retrieved_at,
            content_hash=content_hash(text),
            language=language,
        )


class Rejection(BaseModel):
    """A query or page that gave no passage, and why: counted and reported, never silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str  # a short fixed phrase, the key of the counts ("over the size cap", "HTTP 404", ...)
    detail: str
    query: str
    url: str | None = None
