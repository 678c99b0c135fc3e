"""On-disk cache of searches and fetched pages (sqlite, WAL): each answer is committed as it arrives.

Why: like the LLM cache, a killed run resumes without repeating a finished search or fetch, and a re-run sends
nothing. A key hashes what decides the answer (backend and its identity, query, k; or the page URL and the
fetch settings that decide its text) and never a key. Final page rejections (over the size cap, HTTP 404, not
text) are stored too, so a re-run does not fetch them again; transient failures never are. Writes go through the
LLM cache's writer thread (:class:`GroupCommit`): ``put`` returns a future done at commit, which :class:`Sources`
awaits before it goes on with the answer, so the event loop never waits on sqlite and a kill loses nothing used.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from culturesafe_ext.llm.cache import GroupCommit, open_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class SourceCacheError(ValueError):
    """The cache file cannot be used (not sqlite, unreadable): a setting to fix before the run."""


def entry_key(kind: str, **parts: Any) -> str:
    blob = json.dumps({"kind": kind, **parts}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class SourceCache:
    """One sqlite file shared by threads and processes; ``get`` reads at once, ``put`` queues for the writer."""

    BUSY_TIMEOUT = 60.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._open()
        self._writes = GroupCommit(
            self._db, self._lock, "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", "sources-cache-writer"
        )
        self.problem: str | None = None  # after close: entries used but not written

    def _open(self) -> sqlite3.Connection:
        """The cache file, opened as the LLM cache opens its own (:func:`open_wal`)."""
        try:
            return open_wal(self.path, _SCHEMA, "SELECT key, value FROM entries LIMIT 1", self.BUSY_TIMEOUT)
        except (sqlite3.Error, OSError) as err:
            raise SourceCacheError(
                f"the sources cache {self.path} is not a usable sqlite file ({type(err).__name__}: {err}): move "
                "or delete it, or name another file with cache_path (or set cache to false)"
            ) from None

    def get(self, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, kind: str, value: Any) -> Future:
        """Queue the entry; the future is done once its write attempt is over (committed, or kept for a retry)."""
        return self._writes.put((key, kind, json.dumps(value, ensure_ascii=False), time.time()))

    def flush(self) -> None:
        self._writes.flush()

    def count(self, kind: str | None = None) -> int:
        self.flush()
        with self._lock:
            if kind is None:
                return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM entries WHERE kind = ?", (kind,)).fetchone()[0]

    def close(self) -> None:
        """Write what is queued and close; never raises for entries it could not write (:attr:`problem`)."""
        self.problem = self._writes.close("searches or pages", self.path)
