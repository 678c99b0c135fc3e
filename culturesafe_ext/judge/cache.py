"""On-disk judge cache (sqlite, WAL): each reply is committed the moment it arrives.

A killed run therefore resumes without repeating any request that completed. Only replies are stored,
never prompts' secrets: the key hashes what decides the judge's answer (backend, model, rubric, the full
prompt and sampling parameters) and nothing else, in particular not the API key. Failed requests are
not stored, so a re-run retries them; unparseable answers are stored (the judge did answer) and are
re-parsed on every read, so a better parser applies to old replies too.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT,
    rubric TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(backend: str, model: str | None, rubric: str, messages: list[dict], params: dict) -> str:
    """A stable hash of everything that decides the judge's answer."""
    blob = json.dumps(
        {"backend": backend, "model": model, "rubric": rubric, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """A sqlite file shared by all threads of a process and by other processes (WAL mode).

    ``put`` never blocks the caller (the event loop that collects replies): a writer thread commits
    whatever has arrived since its last commit in one transaction, typically within a millisecond, so a
    killed run loses at most the replies of that last moment. ``close`` (or ``flush``) waits for them.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored replies for those keys that have one."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk)
                found.update((key, json.loads(reply)) for key, reply in rows)
        return found

    def put(self, key: str, reply: dict[str, Any], backend: str, model: str | None, rubric: str) -> None:
        """Queue one reply for the writer thread, which commits it at once."""
        if self._error is not None:
            raise RuntimeError(f"the judge cache {self.path} cannot be written") from self._error
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="judge-cache-writer", daemon=True)
            self._writer.start()
        row = (key, backend, model, rubric, json.dumps(reply, ensure_ascii=False), time.time())
        self._queue.put(row)

    def flush(self) -> None:
        """Wait until every queued reply is committed."""
        if self._writer is not None:
            self._queue.join()
        if self._error is not None:
            raise RuntimeError(f"the judge cache {self.path} cannot be written") from self._error

    def _write_loop(self) -> None:
        while True:
            rows = [self._queue.get()]
            time.sleep(0.005)  # let a few more replies arrive: one commit (and one wake-up) for all of them
            while True:  # group commit: everything that arrived meanwhile goes into one transaction
                try:
                    rows.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in rows
            rows = [r for r in rows if r is not None]
            try:
                if rows and self._error is None:
                    with self._lock:
                        self._db.execute("BEGIN")
                        self._db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?)", rows)
                        self._db.execute("COMMIT")
            except BaseException as err:  # reported by the next put/flush, never lost silently
                self._error = err
                with self._lock:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
            finally:
                for _ in range(len(rows) + stop):
                    self._queue.task_done()
            if stop:
                return

    def count(self) -> int:
        """Rows stored (a method, not ``__len__``: an empty cache must still be truthy)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the file."""
        try:
            if self._writer is not None:
                self._queue.put(None)
                self._writer.join()
                self._writer = None
        finally:
            with self._lock:
                self._db.close()
        if self._error is not None:
            raise RuntimeError(f"the judge cache {self.path} cannot be written") from self._error

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
