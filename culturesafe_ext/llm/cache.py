"""On-disk LLM reply cache (sqlite, WAL): each reply is committed the moment it arrives.

A killed run therefore resumes without repeating any request that completed: :meth:`LLMCache.put` returns a
future that is done once the reply is committed, and an HTTP backend gives a request's slot to the next request
only then, so every reply whose successor went out is on disk. Only replies are stored,
never prompts' secrets: the key hashes what decides the answer (backend, model, prompt id, the full
prompt and sampling parameters) and nothing else, in particular not the API key. Failures are never
stored (failed requests, replies cut by the token limit, filtered replies, replies without a usable
verdict), so a re-run asks again; a good reply is stored as text, never as a verdict, and re-parsed on
every read, so a better parser applies to old replies too.

A cache that cannot be written (another process holds the write lock for longer than the busy
timeout, a full disk) never costs a reply: the rows are kept and retried, and whatever is still
unwritten at :meth:`LLMCache.close` is reported in :attr:`LLMCache.problem` -- the replies
themselves are already in the caller's hands.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

# ``rubric`` holds the prompt id: the column's name since the first release, so existing files stay valid
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


def cache_key(backend: str, model: str | None, prompt_id: str, messages: list[dict], params: dict) -> str:
    """A stable hash of everything that decides the answer (the prompt id under its first name, so that the keys of
    existing cache files stay the same)."""
    blob = json.dumps(
        {"backend": backend, "model": model, "rubric": prompt_id, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CacheError(ValueError):
    """The cache file cannot be used at all (not sqlite, unreadable): a setting to fix before the run."""


def open_wal(path: Path, schema: str, probe: str, timeout: float) -> sqlite3.Connection:
    """Connect, switch to WAL, create the table, read one row (``probe``): the open every on-disk cache shares.

    Several judges (a panel), ranks or processes opening one new file at once race for it: sqlite answers
    "database is locked" to the losers of the journal-mode switch without waiting (its busy handler is not called
    there; 13 of 200 trials of four threads failed), so a locked open is retried until ``timeout``. Any other
    error is raised for the caller to name its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline, wait = time.monotonic() + timeout, 0.01
    while True:
        db = None
        try:
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(schema)
            db.execute(probe).fetchall()
            return db
        except (sqlite3.Error, OSError) as err:
            if db is not None:
                db.close()
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err) and time.monotonic() < deadline:
                time.sleep(wait)
                wait = min(wait * 2, 0.5)
                continue
            raise


class GroupCommit:
    """One writer thread per cache: whatever was queued since its last commit goes in one transaction.

    Why: a commit per row on the caller's thread blocks an event loop that is collecting replies (the sources
    cache's autocommit put was 0.15 ms a row, on the loop); a group commit is one per loop turn. :meth:`put` never
    blocks and returns a future done once the row's write attempt is over, so a caller that must not go on before
    the row is on disk (a resumable run) awaits it. A write that fails (another process holds the lock past the
    busy timeout, a full disk) keeps its rows for the next attempt: :attr:`unwritten` and :attr:`error` say what
    is left after :meth:`close`, which never raises for them."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, insert: str, name: str) -> None:
        self._db, self._lock, self._insert, self._name = db, lock, insert, name
        self._queue: queue.Queue[tuple[tuple, Future] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self.error: BaseException | None = None
        self.unwritten: list[tuple] = []

    def put(self, row: tuple) -> Future:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name=self._name, daemon=True)
            self._writer.start()
        written: Future = Future()
        self._queue.put((row, written))
        return written

    def flush(self) -> None:
        """Wait until every queued row has had its write attempt."""
        if self._writer is not None:
            self._queue.join()

    def close(self, what: str, path: Path) -> str | None:
        """Write what is queued, stop the thread, try rows a lock held back twice more, close the connection; say
        how many ``what`` (e.g. "judge replies") were used but not written to ``path``, if any (never raises)."""
        try:
            if self._writer is not None:
                self._queue.put(None)
                self._writer.join()
                self._writer = None
            for _ in range(2):  # a lock held past the busy timeout: wait for it twice more
                if self.unwritten:
                    self._write([])
        finally:
            with self._lock:
                self._db.close()
        if not self.unwritten:
            return None
        return (
            f"{len(self.unwritten)} {what} were used but not cached: {path} could not be written "
            f"({type(self.error).__name__}: {self.error}); a re-run asks for them again"
        )

    def _commit(self, rows: list[tuple]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(self._insert, rows)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _write(self, rows: list[tuple]) -> None:
        """Commit ``rows`` and any earlier unwritten ones; on failure keep them all for the next try."""
        rows = self.unwritten + rows
        if not rows:
            return
        try:
            self._commit(rows)
        except (sqlite3.Error, OSError) as err:
            self.unwritten, self.error = rows, err
            return
        self.unwritten, self.error = [], None

    def _write_loop(self) -> None:
        while True:
            entries = [self._queue.get()]
            while True:  # group commit: everything that arrived during the last commit goes into one transaction
                try:
                    entries.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in entries
            entries = [e for e in entries if e is not None]
            try:
                self._write([row for row, _ in entries])
            finally:
                for _, written in entries:
                    if written.set_running_or_notify_cancel():  # False: its waiter was cancelled (a cut run)
                        written.set_result(None)
                for _ in range(len(entries) + stop):
                    self._queue.task_done()
            if stop:
                return


class LLMCache:
    """A sqlite file shared by all threads of a process and by other processes (WAL mode).

    ``put`` never blocks the caller (the event loop that collects replies): a writer thread commits
    whatever has arrived since its last commit in one transaction, typically within a millisecond, and
    resolves the future ``put`` returned. A caller that must not go on before the reply is on disk (an
    HTTP backend about to reuse the request's slot) awaits it. ``close`` (or ``flush``) waits for all.
    """

    BUSY_TIMEOUT = 60.0  # seconds sqlite waits for another writer's lock before one write attempt fails

    def __init__(self, path: str | Path, timeout: float | None = None) -> None:
        self.path = Path(path)
        self.timeout = self.BUSY_TIMEOUT if timeout is None else timeout
        self._db = self._open()
        self._lock = threading.Lock()
        self._writes = GroupCommit(
            self._db, self._lock, "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?)", "judge-cache-writer"
        )
        self.problem: str | None = None

    def _open(self) -> sqlite3.Connection:
        """The cache file (:func:`open_wal`); any error there means it is not a usable cache."""
        try:
            return open_wal(self.path, _SCHEMA, "SELECT key, reply FROM replies LIMIT 1", self.timeout)
        except (sqlite3.Error, OSError) as err:
            raise CacheError(
                f"the judge cache {self.path} is not a usable sqlite file ({type(err).__name__}: {err}): move "
                "or delete it, or name another file with judge.cache_path (or set judge.cache to false)"
            ) from None

    @classmethod
    def check(cls, path: str | Path) -> None:
        """Open the cache once and close it: raises :class:`CacheError` naming the file when it is unusable.

        Called before anything is generated, so a bad cache path costs no generation."""
        cls(path, timeout=5.0).close()

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

    def put(self, key: str, reply: dict[str, Any], backend: str, model: str | None, prompt_id: str) -> Future:
        """Queue one reply for the writer thread, which commits it at once (never raises: see the module).

        The future is done when the write attempt is over: committed, or kept for a retry (:attr:`problem`)."""
        row = (key, backend, model, prompt_id, json.dumps(reply, ensure_ascii=False), time.time())
        return self._writes.put(row)

    def flush(self) -> None:
        """Wait until every queued reply has had its write attempt (see :attr:`problem` for the outcome)."""
        self._writes.flush()

    def count(self) -> int:
        """Rows stored (a method, not ``__len__``: an empty cache must still be truthy)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        """Commit what is queued (one last try for rows a lock held back), stop the writer, close the file.

        Never raises for rows it could not write: :attr:`problem` says how many and why."""
        self.problem = self._writes.close("judge replies", self.path)

    def __enter__(self) -> LLMCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
