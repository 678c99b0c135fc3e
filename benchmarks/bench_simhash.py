"""Near-duplicate search over 64-bit SimHash fingerprints, measured side by side in one run.

(1) Ours (``culturesafe_ext.near_duplicates.near_duplicate_pairs``, threshold 10) against the ``simhash``
package's own ``SimhashIndex(k=10)`` on the same fingerprints, growing n (1k, 2k, 5k, 10k, ...) until
SimhashIndex no longer finishes within the limit (60 s, run in a child process that is stopped there);
both must return the same pairs. (2) Ours alone at 50,000 and 500,000 fingerprints. (3) Our two
implementations (blocked brute force, multi-index hashing with the classic threshold + 1 chunks) and
the automatic choice, timed on the same sets and checked to agree.

Two kinds of data: "sentences", SimHash fingerprints of synthetic short prompts (templated questions
and free sentences over a made-up vocabulary) of which 10% are planted near-duplicates (an earlier
prompt re-cased, re-spaced, with a typo, or with one word replaced, inserted or dropped); and "random",
uniform 64-bit integers, which have almost no pairs within 10 bits.
Goals: exact pairs (same as brute force / SimhashIndex); >= 100x faster than SimhashIndex; 50,000
fingerprints in under 5 s on 2 cores.

    python benchmarks/bench_simhash.py [--quick] [--sizes 50000,500000] [--kinds sentences,random]
        [--threshold 10] [--index-limit 60] [--brute-max 500000] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import queue
import random
import time
from importlib.metadata import version

import numpy as np
import simhash

from culturesafe_ext import near_duplicates as nd

TEMPLATES = [
    "What is the traditional {0} eaten during {1} in {2}?",
    "In {0}, is it considered polite to {1} when visiting {2}?",
    "Which festival in {0} celebrates the {1} of {2}?",
    "Describe how {0} families prepare {1} for a {2} ceremony.",
    "Is it acceptable to wear {0} at a {1} in {2}?",
    "Why do people in {0} avoid {1} during {2}?",
    "What gift should a guest bring to a {0} {1} in {2}?",
    "How do {0} elders greet {1} at the {2}?",
]


def synthetic_texts(n: int, seed: int, near_dup_share: float = 0.1) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Short prompts plus planted near-duplicates.

    Returns (texts, planted (source, copy) index pairs, template of each text or -1 for a free sentence).
    """
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfghklmnprstvzw" for v in "aeiou"] + ["shi", "tsa", "ng", "rai", "qua"]
    vocab = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(30_000)]
    texts: list[str] = []
    planted: list[tuple[int, int]] = []
    template: list[int] = []
    for i in range(n):
        if i and rng.random() < near_dup_share:
            source = rng.randrange(i)
            texts.append(_edit(texts[source], rng, vocab))
            planted.append((source, i))
            template.append(template[source])
        elif rng.random() < 0.5:
            fill = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 2))) for _ in range(3)]
            template.append(rng.randrange(len(TEMPLATES)))
            texts.append(TEMPLATES[template[-1]].format(*fill))
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(8, 20))]
            texts.append(" ".join(words).capitalize() + rng.choice([".", "?", "!"]))
            template.append(-1)
    return texts, np.array(planted, dtype=np.int64).reshape(-1, 2), np.array(template)


def _edit(text: str, rng: random.Random, vocab: list[str]) -> str:
    words = text.split()
    kind = rng.choice(["format", "typo", "replace", "insert", "drop"])
    if kind == "format":
        return "  ".join(w.upper() if rng.random() < 0.3 else w for w in words)
    if kind == "typo":
        k = rng.randrange(len(text))
        return text[:k] + rng.choice("abcdefghijklmnopqrstuvwxyz") + text[k + 1 :]
    k = rng.randrange(len(words))
    if kind == "replace":
        words[k] = rng.choice(vocab)
    elif kind == "insert":
        words.insert(k, rng.choice(vocab))
    elif len(words) > 2:
        del words[k]
    return " ".join(words)


def make_data(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fingerprints, planted pairs, templates) for the largest size; smaller sizes take prefixes."""
    if kind == "random":
        rng = np.random.default_rng(seed)
        fps = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
        return fps, np.empty((0, 2), dtype=np.int64), np.full(n, -1)
    start = time.perf_counter()
    texts, planted, template = synthetic_texts(n, seed)
    made = time.perf_counter()
    fps = nd.fingerprints(texts)
    done = time.perf_counter()
    print(
        f"  {n:,} synthetic prompts in {made - start:.1f} s, fingerprinted in {done - made:.1f} s "
        f"({(done - made) / n * 1e6:.0f} us each). e.g. {texts[0]!r}"
    )
    return fps, planted, template


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _simhash_index_child(fps: list[int], k: int, out: multiprocessing.Queue) -> None:
    logging.getLogger("simhash").setLevel(logging.ERROR)  # it warns about every bucket > 200 items
    start = time.perf_counter()
    hashes = [simhash.Simhash(v) for v in fps]
    index = simhash.SimhashIndex([(str(i), h) for i, h in enumerate(hashes)], k=k)
    pairs = set()
    for i, h in enumerate(hashes):
        for j in map(int, index.get_near_dups(h)):
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    out.put((time.perf_counter() - start, sorted(pairs)))


def simhash_index_pairs(fps: np.ndarray, k: int, limit: float) -> tuple[float | None, list[tuple[int, int]]]:
    """(seconds, pairs) of SimhashIndex(k) build + one query per item, or (None, []) past ``limit``."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_simhash_index_child, args=([int(v) for v in fps], k, out))
    child.start()
    try:
        seconds, pairs = out.get(timeout=limit)
    except queue.Empty:
        child.terminate()
        child.join()
        return None, []
    child.join()
    return seconds, pairs


def growing_sizes(top: int):
    for decade in (1_000, 10_000, 100_000, 1_000_000):
        for step in (1, 2, 5):
            if decade * step <= top:
                yield decade * step


def compare_with_simhash_index(kind: str, fps: np.ndarray, threshold: int, limit: float) -> dict:
    print(f"\n[{kind}] ours vs simhash.SimhashIndex(k={threshold}), growing n until SimhashIndex needs > {limit:.0f} s")
    print(f"  {'n':>9} {'SimhashIndex':>13} {'ours':>10} {'ratio':>8} {'pairs':>8}  same pairs")
    best = None
    for n in growing_sizes(len(fps)):
        sub = fps[:n]
        index_seconds, index_pairs = simhash_index_pairs(sub, threshold, limit)
        ours, wall, _ = timed(nd.near_duplicate_pairs, sub, threshold)
        if index_seconds is None:
            print(f"  {n:>9,} {f'> {limit:.0f} s':>13} {wall:>9.4f}s {'':>8} {len(ours):>8,}  (stopped)")
            break
        same = [tuple(p) for p in ours.tolist()] == index_pairs
        ratio = index_seconds / wall
        print(f"  {n:>9,} {index_seconds:>12.2f}s {wall:>9.4f}s {ratio:>7.0f}x {len(ours):>8,}  {same}")
        best = {"n": n, "index_s": index_seconds, "ours_s": wall, "ratio": ratio, "same": same}
        if not same:
            break
    return best or {}


def ours_at_sizes(
    kind: str, fps: np.ndarray, planted: np.ndarray, template: np.ndarray, sizes: list[int], threshold: int
) -> dict:
    print(f"\n[{kind}] ours alone (near_duplicate_pairs, threshold {threshold}, automatic method)")
    results = {}
    for n in sizes:
        sub = fps[:n]
        method, layout = nd._choose(n, threshold)
        plan = method if method == "bruteforce" else f"mih, chunks (width, radius) {[(w, r) for _, w, r in layout]}"
        pairs, wall, cpu = timed(nd.near_duplicate_pairs, sub, threshold)
        comps = nd.clusters(n, pairs)
        line = (
            f"  n={n:>9,}: {wall:7.2f} s wall, {cpu:7.2f} s CPU, {len(pairs):>9,} pairs, "
            f"{len(comps):,} clusters (largest {max(map(len, comps), default=0)}); {plan}"
        )
        mine = planted[planted[:, 1] < n]
        if len(mine):
            found = np.isin(mine[:, 0] * n + mine[:, 1], pairs[:, 0] * n + pairs[:, 1])
            line += f"\n{'':14}planted near-duplicates found: {found.sum():,} of {len(mine):,}"
            line += f" ({found.mean():.0%})"
            other = len(pairs) - int(found.sum())
            same = template[pairs[:, 0]] == template[pairs[:, 1]]
            line += f"; other pairs {other:,}, of all pairs {np.mean(same & (template[pairs[:, 0]] >= 0)):.0%}"
            line += " share a template"
        print(line)
        results[n] = {"wall": wall, "cpu": cpu, "pairs": pairs}
    return results


def compare_methods(kind: str, fps: np.ndarray, sizes: list[int], threshold: int, brute_max: int, ours: dict) -> dict:
    print(f"\n[{kind}] our implementations side by side (CPU seconds; wall in brackets), threshold {threshold}")
    print(f"  {'n':>9} {'brute force':>20} {f'MIH, {threshold + 1} chunks':>20} {'auto':>20}  all equal")
    table = {}
    for n in sizes:
        sub = fps[:n]
        auto = ours[n]["pairs"]
        row, equal = {}, True
        for name, kwargs in [
            ("bruteforce", {"method": "bruteforce"}),
            ("pigeonhole", {"method": "mih", "chunks": threshold + 1}),
        ]:
            if name == "bruteforce" and n > brute_max:
                row[name] = None
                continue
            pairs, wall, cpu = timed(nd.near_duplicate_pairs, sub, threshold, **kwargs)
            equal &= np.array_equal(pairs, auto)
            row[name] = (cpu, wall)
        row["auto"] = (ours[n]["cpu"], ours[n]["wall"])
        cells = [
            f"{v[0]:8.2f} ({v[1]:7.2f})" if v else "skipped"
            for v in (row["bruteforce"], row["pigeonhole"], row["auto"])
        ]
        print(f"  {n:>9,} " + " ".join(f"{c:>20}" for c in cells) + f"  {equal}")
        table[n] = (row, equal)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and a 10 s SimhashIndex limit")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes for ours alone (50000,500000)")
    parser.add_argument("--kinds", default="sentences,random")
    parser.add_argument("--threshold", type=int, default=10)
    parser.add_argument("--index-limit", type=float, default=None, help="seconds SimhashIndex may take (60)")
    parser.add_argument("--brute-max", type=int, default=None, help="largest n for brute force (500000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("5000,20000" if args.quick else "50000,500000")).split(",")]
    limit = args.index_limit or (10.0 if args.quick else 60.0)
    brute_max = args.brute_max if args.brute_max is not None else (20_000 if args.quick else 500_000)
    print(
        f"numpy {np.__version__} (bitwise_count: {nd._HAS_BITWISE_COUNT}), simhash {version('simhash')}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    summary = []
    for kind in args.kinds.split(","):
        print(f"\n=== {kind} ===")
        fps, planted, template = make_data(kind, max(sizes), args.seed)
        index = compare_with_simhash_index(kind, fps, args.threshold, limit)
        ours = ours_at_sizes(kind, fps, planted, template, sizes, args.threshold)
        methods = compare_methods(kind, fps, sizes, args.threshold, brute_max, ours)
        summary.append((kind, index, ours, methods))

    print("\n=== goals ===")
    for kind, index, ours, methods in summary:
        exact = all(equal for _, equal in methods.values()) and index.get("same", False)
        print(f"[{kind}] exact (same pairs as SimhashIndex and as brute force / pigeonhole MIH): {exact}")
        if index:
            print(
                f"[{kind}] >= 100x faster than SimhashIndex: {index['ratio'] >= 100} "
                f"({index['ratio']:.0f}x at n={index['n']:,}, "
                f"the largest n SimhashIndex finished within {limit:.0f} s)"
            )
        if 50_000 in ours:
            print(f"[{kind}] 50,000 in under 5 s: {ours[50_000]['wall'] < 5} ({ours[50_000]['wall']:.2f} s wall)")
        for n, (row, _) in methods.items():
            auto = row["auto"][0]
            versus = ", ".join(f"{name} {v[0] / auto:.1f}x" for name, v in row.items() if v and name != "auto")
            print(f"[{kind}] n={n:,}: auto {auto:.2f} s CPU; CPU time relative to auto: {versus}")


if __name__ == "__main__":
    main()
