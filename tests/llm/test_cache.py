"""The sqlite judge cache: what its key covers, and many concurrent writers (threads and files)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from culturesafe_ext.llm.cache import LLMCache, cache_key

MESSAGES = [{"role": "system", "content": "rubric"}, {"role": "user", "content": "prompt"}]
PARAMS = {"temperature": 0.0, "max_tokens": 64, "extra_body": {}}


def test_key_covers_what_decides_the_answer() -> None:
    base = cache_key("openai", "m", "respectfulness.v1", MESSAGES, PARAMS)
    assert base == cache_key("openai", "m", "respectfulness.v1", [dict(m) for m in MESSAGES], dict(PARAMS))
    variants = [
        cache_key("hf", "m", "respectfulness.v1", MESSAGES, PARAMS),
        cache_key("openai", "m2", "respectfulness.v1", MESSAGES, PARAMS),
        cache_key("openai", "m", "respectfulness.v2", MESSAGES, PARAMS),
        cache_key("openai", "m", "respectfulness.v1", [MESSAGES[0], {"role": "user", "content": "?"}], PARAMS),
        cache_key("openai", "m", "respectfulness.v1", MESSAGES, {**PARAMS, "temperature": 0.7}),
    ]
    assert len({base, *variants}) == 6


def test_put_get_and_wal(tmp_path: Path) -> None:
    with LLMCache(tmp_path / "sub" / "c.sqlite") as cache:
        cache.put("k1", {"text": '{"score": 3}'}, "openai", "m", "awareness.v1")
        cache.flush()
        assert cache.get_many(["k1", "k2"]) == {"k1": {"text": '{"score": 3}'}}
        assert cache.count() == 1
    with sqlite3.connect(tmp_path / "sub" / "c.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_many_threads_and_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    first, second = LLMCache(path), LLMCache(path)  # like two processes sharing the file

    def write(cache: LLMCache, tag: str) -> None:
        for i in range(150):
            cache.put(f"{tag}-{i}", {"text": str(i)}, "openai", "m", "r.v1")

    threads = [threading.Thread(target=write, args=(c, f"t{n}")) for n, c in enumerate([first, second] * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first.close()
    second.close()
    with LLMCache(path) as cache:
        assert cache.count() == 8 * 150
        found = cache.get_many(f"t{n}-{i}" for n in range(8) for i in range(150))
        assert len(found) == 1200 and found["t7-149"] == {"text": "149"}


def test_judges_opening_one_new_cache_file_at_once_all_get_it(tmp_path: Path) -> None:
    """A panel's judges (or data-parallel ranks) open the same new file together: sqlite refuses the losers of
    the switch to WAL with "database is locked" without waiting; the open retries (13 of 200 such trials failed
    before)."""
    import threading

    from culturesafe_ext.llm.cache import LLMCache

    for trial in range(60):
        path, barrier, errors = tmp_path / f"c{trial}.sqlite", threading.Barrier(4), []

        def open_it(path: Path = path, barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            barrier.wait()
            try:
                LLMCache(path).close()
            except Exception as err:  # noqa: BLE001 - every failure is the finding
                errors.append(err)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, (trial, errors)
