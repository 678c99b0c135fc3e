"""Page text extraction in worker processes, so that it runs beside the event loop instead of against it.

Why processes: trafilatura and pypdf are CPU work (2.5 ms for a stand-in page, tens of ms for a real article,
more for a PDF). In threads they hold the GIL that the event loop needs to read replies and send the next
request: with ``asyncio.to_thread`` the synthesis benchmark's main process spent 4.3 s of CPU where extracting
in the loop's own thread spent 1.9 s (528 pages, 2 cores; benchmarks/results/bench_synthesize.txt). A process
pool keeps the loop's thread free and uses the other cores.

The pool is one per process and worker count, started on first use (or by :func:`warm`, which a pipeline calls
before its first LLM stage so the workers import trafilatura meanwhile) and shut down at exit. A worker that
dies (a crash in lxml, the OOM killer) breaks the pool: the page is rejected as "extraction failed", not cached
(a re-run tries again), and the next page gets a new pool. ``workers=0`` extracts in a thread of this process, as
does a process whose workers could not start at all (see :func:`run`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_pools: dict[int, ProcessPoolExecutor] = {}
_started: dict[ProcessPoolExecutor, Future] = {}  # a pool's first job (a no-op): done once a worker started
_in_thread: set[int] = set()  # worker counts whose pool could not start: extract in a thread from then on
_lock = threading.Lock()
log = logging.getLogger("culturesafe.sources")
NO_START = (
    "page extraction runs in a thread: its worker processes could not start (a script that starts a run must do so "
    "under `if __name__ == '__main__':`, as multiprocessing requires)"
)
WARM_PAGE = b"<html><head><title>warm</title></head><body><p>The workers import their extractor once.</p></body></html>"


class ExtractorCrashed(Exception):
    """A worker process died while extracting (the pool is replaced for the next page)."""


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it (a child is forked from a clean server, not from this process and its
    threads), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _exit_with_parent() -> None:
    """A worker holds both ends of its task queue, so it never sees the parent die: a SIGKILLed run would leave it
    (and the fork server) running. It waits on the parent's sentinel and exits with it."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def _start_worker() -> None:
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    from culturesafe_ext.sources.fetch import read_page

    read_page(WARM_PAGE, "text/html", None, "http://127.0.0.1/")


def pool(workers: int) -> ProcessPoolExecutor:
    """The process's pool of ``workers`` extractors (created once, each worker warmed as it starts)."""
    with _lock:
        found = _pools.get(workers)
        if found is None:
            found = _pools[workers] = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_start_worker)
            _started[found] = found.submit(int)
        return found


def warm(workers: int) -> list[Future]:
    """Start the pool's workers now (they load trafilatura and the language model while the caller does other
    work); 0 workers: nothing."""
    if workers <= 0 or workers in _in_thread:
        return []
    executor = pool(workers)
    return [executor.submit(int) for _ in range(workers)]


def _drop(executor: Executor) -> None:
    with _lock:
        for workers, found in list(_pools.items()):
            if found is executor:
                del _pools[workers]
    executor.shutdown(wait=False, cancel_futures=True)


async def run(workers: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in the pool (``workers`` > 0) or in a thread; :class:`ExtractorCrashed` if a worker died.

    A pool that breaks before its first job (a no-op queued when it was made) finished could not start its workers
    (a script without the ``__main__`` guard re-runs itself in them and fails there): that is said once, and
    extraction goes on in a thread."""
    if workers <= 0 or workers in _in_thread:
        return await asyncio.to_thread(fn, *args)
    executor = pool(workers)
    try:
        result = await asyncio.wrap_future(executor.submit(fn, *args))
    except BrokenProcessPool as err:
        first = _started.pop(executor, None)
        _drop(executor)
        if first is not None and first.done() and not first.cancelled() and first.exception() is None:
            raise ExtractorCrashed(f"the extraction worker died ({err})") from None
        if workers not in _in_thread:
            _in_thread.add(workers)
            log.warning(NO_START)
        return await asyncio.to_thread(fn, *args)
    return result
