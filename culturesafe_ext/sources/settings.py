"""Sources settings, parsed in one place: defaults, overlaid by ``CULTURESAFE_SOURCES_*`` env vars, overlaid by flags.

Why pydantic with ``extra="forbid"`` and no infinities: a misspelt or non-finite setting is a one-line error
before any request. Keys are never settings: :func:`api_key` reads them from the environment when a request
needs them (``TAVILY_API_KEY``), so they reach no log, cache or results file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from culturesafe_ext.llm.settings import safe_transport
from culturesafe_ext.paths import cache_dir

ENV_PREFIX = "CULTURESAFE_SOURCES_"
CACHE_FILE = "sources.sqlite"


def default_extract_workers() -> int:
    """Processes extracting page text: a core is left to the event loop (and the servers of a local run), at most 4
    (one extracts a few hundred pages a second)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class SourcesSettingError(ValueError):
    """A sources setting or ``--search`` spec is malformed; the message names it (one line, no secret)."""


class SourcesSettings(BaseModel):
    """How searches and page fetches are made (nothing secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    k: int = Field(10, ge=1, le=100)  # results per query
    concurrency: int = Field(16, ge=1, le=1024)  # searches in flight at once, and page fetches (each limit apart)
    timeout: float = Field(30.0, gt=0)  # seconds for one HTTP attempt
    max_retries: int = Field(4, ge=0, le=20)  # retries after the first attempt (429, 5xx, dropped connections)
    retry_wait_initial: float = Field(0.5, ge=0)  # full-jitter backoff: up to initial * 2**(n-1) s ...
    retry_wait_max: float = Field(30.0, ge=0)  # ... never longer, a server's Retry-After included
    max_bytes: int = Field(2_000_000, ge=1)  # a page body larger than this is rejected ("over the size cap")
    fetch_pages: bool = True  # web backends: fetch each result page's main text (else keep the snippet)
    min_chars: int = Field(200, ge=0)  # a page whose main text is shorter is rejected ("no main text")
    extract_workers: int = Field(default_factory=lambda: default_extract_workers(), ge=0, le=256)  # 0: a thread
    user_agent: str = "culturesafe-sources/0.1 (+https://github.com/culturesafe)"
    searxng_url: str = "http://localhost:8888"  # used when the spec is plain ``searxng``
    tavily_url: str = "https://api.tavily.com"
    tavily_search_depth: str = Field("basic", pattern="^(basic|advanced)$")
    cache: bool = True
    cache_path: str | None = None  # default: <culturesafe cache dir>/sources.sqlite
    index_dir: str | None = None  # bm25 indexes; default: <culturesafe cache dir>/bm25

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> SourcesSettings:
        """Defaults < ``CULTURESAFE_SOURCES_<NAME>`` env vars < ``overrides`` (flags; ``None`` values ignored)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                values[name] = raw
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            source = "flag" if where in (overrides or {}) else f"env {ENV_PREFIX}{where.upper()}"
            raise SourcesSettingError(f"sources setting {where} ({source}): {first['msg']}") from None

    def resolved_cache_path(self) -> Path:
        return Path(self.cache_path) if self.cache_path else cache_dir() / CACHE_FILE

    def resolved_index_dir(self) -> Path:
        return Path(self.index_dir) if self.index_dir else cache_dir() / "bm25"


def api_key(env_name: str, base_url: str) -> str:
    """The key from ``env_name``, read when a request needs it; refused over plain HTTP to another machine."""
    key = os.environ.get(env_name) or ""
    if not key:
        raise SourcesSettingError(f"no API key: set the environment variable {env_name}")
    if not safe_transport(base_url):
        raise SourcesSettingError(f"refusing to send {env_name} over plain HTTP to {base_url}: use https")
    return key
