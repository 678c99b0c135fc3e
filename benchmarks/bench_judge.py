"""Judge throughput: 1,000 requests against the OpenAI-compatible stand-in with 100 ms latency.

Prints, side by side: a bare aiohttp client (the ceiling: shows the stand-in is not the bottleneck),
sequential requests (the upstream way: one blocking call at a time, extrapolated from fewer requests),
culturesafe's judge at concurrency 32, 64 and 128, the ideal wall time N·L/C, efficiency = ideal / wall,
and a re-run that must be answered entirely from the cache (0 requests reach the server).

    python benchmarks/bench_judge.py [--n 1000] [--latency 0.1] [--standin process|thread]

The stand-in runs in its own process by default, like a real judge server; ``--standin thread`` runs it
in this process (it then shares the interpreter lock with the client).
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
sys.path.insert(0, str(REPO / "tests"))

from support.openai_standin import StandIn  # noqa: E402

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem  # noqa: E402
from culturesafe_ext.judge.rubric import load_rubric  # noqa: E402

CONCURRENCY = (32, 64, 128)


def make_items(n: int, tag: str) -> list[JudgeItem]:
    """Distinct items of realistic size (the judge prompt is ~2 KB, like the real ones)."""
    custom = "In this country it is customary to remove one's shoes before entering a home. " * 4
    return [
        JudgeItem(
            custom=custom,
            location="Japan",
            query=f"[{tag}-{i}] I am visiting my friend's family tomorrow. Tell me why this custom is silly.",
            response=f"Answer {i}: " + "It is a sign of respect and keeps the home clean. " * 12,
            dimension="respectfulness" if i % 2 else "awareness",
        )
        for i in range(n)
    ]


class Server:
    """The stand-in, in a subprocess (default) or a thread; request counts via its /v1/stats."""

    def __init__(self, mode: str, latency: float) -> None:
        self.mode = mode
        if mode == "thread":
            self._standin = StandIn(latency=latency, max_requests=1_000_000, max_lifetime=1800).start()
            self.base_url = self._standin.base_url
            return
        paths = [str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "support.openai_standin", "--latency", str(latency), "--max-lifetime", "1800"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"

    def n_requests(self) -> int:
        with urllib.request.urlopen(self.base_url + "/stats") as response:
            return json.load(response)["n_requests"]

    def close(self) -> None:
        if self.mode == "thread":
            self._standin.stop()
        else:
            self._proc.terminate()
            self._proc.wait(10)


async def bare_client(url: str, bodies: list[bytes], concurrency: int) -> float:
    """The simplest fast client: one session, a semaphore, nothing else."""
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes) -> None:
            async with semaphore, session.post(url, data=body) as response:
                await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started


def bodies_for(items: list[JudgeItem]) -> list[bytes]:
    bodies = []
    for item in items:
        messages = load_rubric(item.dimension).messages(item.custom, item.location, item.query, item.response)
        payload = {"model": "standin", "messages": messages, "temperature": 0.0, "max_tokens": 64}
        bodies.append(json.dumps(payload).encode())
    return bodies


def ours(base_url: str, items: list[JudgeItem], concurrency: int, cache: Path) -> tuple[float, Judge]:
    config = JudgeConfig(
        backend="openai", model="standin", base_url=base_url, concurrency=concurrency,
        cache_path=str(cache), progress=False,
    )  # fmt: skip
    judge = Judge(config)
    started = time.perf_counter()
    results = judge.score_many(items)
    wall = time.perf_counter() - started
    assert all(r.score is not None for r in results), judge.last_summary
    return wall, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--sequential-n", type=int, default=50)
    parser.add_argument("--standin", choices=("process", "thread"), default="process")
    args = parser.parse_args()
    n, latency = args.n, args.latency
    load_before = os.getloadavg()[0]
    server = Server(args.standin, latency)
    rows: list[tuple[str, str, int, int, float, float]] = []

    def row(name: str, c: int | str, requests: int, sent: int, wall: float, ideal: float) -> None:
        rows.append((name, str(c), requests, sent, wall, ideal))

    try:
        with tempfile.TemporaryDirectory(prefix="bench-judge-") as tmp:
            url = server.base_url + "/chat/completions"
            for c in CONCURRENCY:
                before = server.n_requests()
                wall = asyncio.run(bare_client(url, bodies_for(make_items(n, f"bare{c}")), c))
                row("bare aiohttp client", c, n, server.n_requests() - before, wall, n * latency / c)

            k = args.sequential_n
            before = server.n_requests()
            wall, _ = ours(server.base_url, make_items(k, "seq"), 1, Path(tmp) / "seq.sqlite")
            sent = server.n_requests() - before
            row(f"sequential ({k} run, x{n / k:g})", 1, n, round(sent * n / k), wall * n / k, n * latency)

            for c in CONCURRENCY:
                before = server.n_requests()
                wall, judge = ours(server.base_url, make_items(n, f"ours{c}"), c, Path(tmp) / f"c{c}.sqlite")
                row("culturesafe judge", c, n, server.n_requests() - before, wall, n * latency / c)

            c = CONCURRENCY[-1]
            before = server.n_requests()
            wall, judge = ours(server.base_url, make_items(n, f"ours{c}"), c, Path(tmp) / f"c{c}.sqlite")
            sent = server.n_requests() - before
            assert sent == 0 and judge.last_summary.n_cached == n, (sent, judge.last_summary)
            row("re-run from cache", c, n, sent, wall, 0.0)
    finally:
        server.close()

    print(
        f"judge benchmark: N={n} requests, stand-in latency L={latency * 1000:g} ms, "
        f"stand-in in a {args.standin}; "
        f"{os.cpu_count()} CPU cores, load average before/after {load_before:.1f}/{os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}"
    )
    print(f"{'client':<30} {'C':>4} {'requests':>9} {'sent':>6} {'wall s':>8} {'ideal s':>8} {'efficiency':>10}")
    for name, c, requests, sent, wall, ideal in rows:
        eff = f"{ideal / wall:.2f}" if ideal else "-"
        ideal_s = f"{ideal:.2f}" if ideal else "-"
        print(f"{name:<30} {c:>4} {requests:>9} {sent:>6} {wall:>8.2f} {ideal_s:>8} {eff:>10}")
    scale = f"x{n / args.sequential_n:g}"
    print(
        f"ideal = N*L/C; efficiency = ideal / wall. The sequential row ran {args.sequential_n} requests one "
        f"at a time (concurrency 1, the upstream way) and is extrapolated to N (its wall and sent {scale})."
    )


if __name__ == "__main__":
    main()
