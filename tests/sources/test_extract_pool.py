"""Page text is extracted in worker processes (culturesafe_ext.sources.extract_pool): same passages as in a thread,
rejections raised in a worker arrive whole, and a worker that dies costs one counted, uncached page, not the run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from support.searxng_standin import SearxngStandIn

from culturesafe_ext.sources import Sources, SourcesSettings, extract_pool, fetch, make_search_backend
from culturesafe_ext.sources.fetch import PageRejected, extract_text

QUERIES = ["japan gift etiquette", "india dining customs"]


def retrieve(server: SearxngStandIn, tmp_path, queries, **values):
    base = {"cache_path": str(tmp_path / "sources.sqlite"), "min_chars": 50, "retry_wait_initial": 0.01}
    config = SourcesSettings.load({**base, **values}, env={})
    s = Sources(make_search_backend(f"searxng:{server.base_url}", config), config)
    try:
        return s.retrieve_sync(queries, 2)
    finally:
        s.close()


def die_in_the_worker(*_args) -> None:
    """What a segfault in lxml or the OOM killer does to a worker."""
    os._exit(3)


def test_worker_processes_give_the_same_passages_as_a_thread(tmp_path):
    with SearxngStandIn(results_per_query=2) as server:
        in_workers = retrieve(server, tmp_path / "a", QUERIES, extract_workers=1)
        in_thread = retrieve(server, tmp_path / "b", QUERIES, extract_workers=0)
    assert len(in_workers.passages) == 4 and in_workers.rejections == []
    assert [(p.url, p.title, p.text) for p in in_workers.passages] == [
        (p.url, p.title, p.text) for p in in_thread.passages
    ]
    assert extract_pool.pool(1) is extract_pool.pool(1)  # one pool per process and worker count, reused


def test_a_rejection_raised_in_a_worker_keeps_its_reason_detail_and_finality():
    with pytest.raises(PageRejected) as raised:
        asyncio.run(extract_pool.run(1, extract_text, b"GIF89a", "image/gif", None, "http://127.0.0.1/x.gif"))
    assert (raised.value.reason, raised.value.detail, raised.value.final) == (
        "not text",
        "http://127.0.0.1/x.gif is image/gif",
        True,
    )


def test_a_dead_worker_is_reported_and_the_next_call_gets_a_new_pool():
    broken = extract_pool.pool(1)
    with pytest.raises(extract_pool.ExtractorCrashed, match="the extraction worker died"):
        asyncio.run(extract_pool.run(1, die_in_the_worker))
    assert asyncio.run(extract_pool.run(1, pow, 2, 10)) == 1024
    assert extract_pool.pool(1) is not broken


def test_a_page_whose_worker_died_is_counted_not_cached_and_fetched_again(tmp_path, monkeypatch):
    with SearxngStandIn(results_per_query=1) as server:
        monkeypatch.setattr(fetch, "read_page", die_in_the_worker)
        first = retrieve(server, tmp_path, ["temple visits"], extract_workers=1)
        monkeypatch.undo()
        again = retrieve(server, tmp_path, ["temple visits"], extract_workers=1)
        assert server.searches["temple visits"] == 1 and server.pages["temple-visits-0"] == 2  # search cached, page not
    assert [(r.reason, r.url) for r in first.rejections] == [("extraction failed", first.rejections[0].url)]
    assert "the extraction worker died" in first.rejections[0].detail and first.passages == []
    assert again.rejections == [] and len(again.passages) == 1


WORKER_OF_A_RUN = """
import asyncio, os, sys, time
from culturesafe_ext.sources import extract_pool
print(asyncio.run(extract_pool.run(1, os.getpid)), flush=True)
time.sleep(120)
"""


def test_workers_exit_when_their_run_is_killed():
    """A SIGKILLed run (the kill-and-resume tests, a user's ^\\) leaves no extraction worker behind."""
    run = subprocess.Popen([sys.executable, "-c", WORKER_OF_A_RUN], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(run.stdout.readline())
        os.kill(worker, 0)  # alive while its run is
    finally:
        run.kill()
        run.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.05)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


UNGUARDED = """
import sys
from culturesafe_ext.sources import Sources, SourcesSettings, make_search_backend
settings = SourcesSettings.load({"cache": False, "min_chars": 50, "extract_workers": 1}, env={})
sources = Sources(make_search_backend("searxng:" + sys.argv[1], settings), settings)
retrieval = sources.retrieve_sync(["temple visits"], 1)
print("RESULT", len(retrieval.passages), retrieval.passages[0].language, len(retrieval.rejections))
"""


def test_a_script_without_the_main_guard_extracts_in_a_thread_and_says_so(tmp_path):
    """Its workers re-run the script and fail (multiprocessing's rule): the run goes on, every page extracted."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    with SearxngStandIn(results_per_query=1) as server:
        done = subprocess.run(
            [sys.executable, str(script), server.base_url], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line for line in done.stdout.splitlines() if line.startswith("RESULT")] == ["RESULT 1 en 0"]
    assert done.stderr.count(extract_pool.NO_START) == 1
