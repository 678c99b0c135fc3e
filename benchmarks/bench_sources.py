"""Sources throughput: searches and page fetches against the SearXNG-shaped stand-in with 100 ms latency.

Each query costs one search and ``--results`` page fetches (every page's main text extracted with trafilatura).
Prints, side by side at concurrency 32: a bare aiohttp client doing the same requests with no extraction and no
cache (the ceiling: shows the stand-in is not the bottleneck), culturesafe's ``Sources`` with page fetching, the
same with snippets only (``fetch_pages`` off: searches alone), the ideal wall time N·L/C, efficiency = ideal /
wall, ours / ceiling, and a re-run that must be answered entirely from the cache (0 requests reach the server).

    python benchmarks/bench_sources.py [--queries 200] [--results 3] [--latency 0.1] [--concurrency 32]

The stand-in runs in its own process, like a real search server. Output: benchmarks/results/bench_sources.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent

from culturesafe_ext.sources import Sources, SourcesSettings, make_search_backend  # noqa: E402
from culturesafe_ext.sources.fetch import extract_text  # noqa: E402


class Server:
    """The stand-in in a subprocess; request counts via its /stats."""

    def __init__(self, latency: float, results: int) -> None:
        paths = [str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        command = [sys.executable, "-m", "support.searxng_standin", "--latency", str(latency)]
        command += ["--results", str(results), "--max-lifetime", "1800"]
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}"

    def n_requests(self) -> int:
        with urllib.request.urlopen(self.base_url + "/stats") as response:
            stats = json.load(response)
        return stats["searches"] + stats["pages"]

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


async def bare_client(base_url: str, queries: list[str], concurrency: int, fetch: bool) -> float:
    """The simplest fast client: one session, a semaphore, search then fetch each result; nothing else."""
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def page(url: str) -> None:
            async with semaphore, session.get(url) as response:
                await response.read()

        async def one(query: str) -> None:
            async with semaphore, session.get(base_url + "/search", params={"q": query, "format": "json"}) as r:
                results = (await r.json())["results"]
            if fetch:
                await asyncio.gather(*(page(item["url"]) for item in results))

        started = time.perf_counter()
        await asyncio.gather(*(one(q) for q in queries))
        return time.perf_counter() - started


def ours(base_url: str, queries: list[str], k: int, concurrency: int, cache: Path, fetch: bool):
    settings = SourcesSettings.load(
        {"concurrency": concurrency, "cache_path": str(cache), "fetch_pages": fetch, "min_chars": 50}, env={}
    )
    sources = Sources(make_search_backend(f"searxng:{base_url}", settings), settings)
    started = time.perf_counter()
    retrieval = sources.retrieve_sync(queries, k)
    wall = time.perf_counter() - started
    sources.close()
    assert not retrieval.rejections, retrieval.summary()
    return wall, retrieval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--results", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_sources.txt"))
    args = parser.parse_args()
    n, k, c, latency = args.queries, args.results, args.concurrency, args.latency
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"bench_sources: {n} queries x (1 search + {k} pages), concurrency {c}, stand-in latency {latency:g} s")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, load {load}")
    started = time.perf_counter()
    extract_text(b"<html><body><p>warm-up</p></body></html>", "text/html", None, "http://127.0.0.1/")
    say(f"one-time import of trafilatura (not in the timings below): {time.perf_counter() - started:.2f} s")
    server = Server(latency, k)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for label, fetch in (("search + fetch", True), ("search only", False)):
                queries = [f"{label} custom {i}" for i in range(n)]
                requests = n * (1 + k) if fetch else n
                ideal = requests * latency / c
                bare = asyncio.run(bare_client(server.base_url, [f"bare {q}" for q in queries], c, fetch))
                cache = Path(tmp) / f"{label.replace(' ', '')}.sqlite"
                before = server.n_requests()
                wall, retrieval = ours(server.base_url, queries, k, c, cache, fetch)
                sent = server.n_requests() - before
                before = server.n_requests()
                cached_wall, cached = ours(server.base_url, queries, k, c, cache, fetch)
                resent = server.n_requests() - before
                assert cached.passages == retrieval.passages
                rows.append((label, requests, ideal, bare, wall, sent, len(retrieval.passages), cached_wall, resent))
            say("")
            say(f"{'run':<16}{'requests':>9}{'ideal s':>9}{'bare s':>8}{'ours s':>8}{'bare eff':>9}{'ours eff':>9}"
                f"{'ours/bare':>10}{'passages/s':>11}{'cached s':>9}{'re-sent':>8}{'first/cached':>13}")  # fmt: skip
            for label, requests, ideal, bare, wall, sent, passages, cached_wall, resent in rows:
                assert sent == requests, (sent, requests)
                say(
                    f"{label:<16}{requests:>9}{ideal:>9.2f}{bare:>8.2f}{wall:>8.2f}{ideal / bare:>9.2f}"
                    f"{ideal / wall:>9.2f}{bare / wall:>10.2f}{passages / wall:>11.1f}{cached_wall:>9.3f}{resent:>8}"
                    f"{wall / cached_wall:>13.1f}"
                )
            say("")
            say("eff = ideal wall (requests x latency / concurrency) / measured wall; ours/bare = bare / ours wall;")
            say("cached = the same run again on the same cache (re-sent must be 0); fetching includes trafilatura.")
    finally:
        server.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
