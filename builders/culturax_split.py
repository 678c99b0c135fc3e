"""The CulturaX split both builders use: whole near-duplicate clusters, stratified by subdomain within each domain.

The release builder (``culturesafe build culturax``) and the generator (``culturesafe generate culturax``) call
the same function with the same default seed, so the same questions land in the same split.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import numpy as np

from culturesafe_ext import near_duplicates as nd
from culturesafe_ext.data.splits import DATASET_SPLIT_SEED

DEFAULT_SEED = DATASET_SPLIT_SEED
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def _largest_remainder(total: int, weights: dict, fraction: float) -> dict:
    """Integer shares of ``total`` proportional to ``weights`` (each about weight * fraction)."""
    exact = {k: w * fraction for k, w in weights.items()}
    shares = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(shares.values())
    for k in sorted(exact, key=lambda k: (shares[k] - exact[k], str(k)))[: max(left, 0)]:
        shares[k] += 1
    return shares


def split_units(units: list[list[int]], subdomain: list[int], domain: list[str], seed: int) -> list[str]:
    """Assign whole units (near-duplicate clusters, or single questions) to train/validation/test.

    Stratified by subdomain within each UNESCO domain: per domain, validation and test each get
    ``round(10% of its questions)`` (at least one when the domain has three or more), shared out over
    its subdomains by largest remainder; units are placed largest first, in a seeded random order,
    where their subdomain still needs questions. A unit is never divided, so no near-duplicate pair
    can straddle two splits. Returns the split of every question.
    """
    rng = random.Random(seed)
    split = [""] * len(subdomain)
    by_domain: dict[str, list[list[int]]] = defaultdict(list)
    for unit in units:
        by_domain[domain[unit[0]]].append(unit)
    for dom in sorted(by_domain):
        members = by_domain[dom]
        n = sum(len(u) for u in members)
        per_sub = Counter(subdomain[u[0]] for u in members for _ in u)
        need_dom, need_sub = {}, {}
        for s in ("validation", "test"):
            quota = max(1, round(n * FRACTIONS[s])) if n >= 3 else 0
            need_dom[s] = quota
            need_sub[s] = _largest_remainder(quota, per_sub, quota / n)
        order = members[:]
        rng.shuffle(order)
        order.sort(key=len, reverse=True)
        placed: dict[int, str] = {}
        for k, unit in enumerate(order):
            sub, size = subdomain[unit[0]], len(unit)
            options = [s for s in ("test", "validation") if need_sub[s].get(sub, 0) > 0 and need_dom[s] >= size]
            target = max(options, key=lambda s: need_sub[s][sub]) if options else "train"
            if target != "train":
                need_sub[target][sub] -= size
                need_dom[target] -= size
            placed[k] = target
        for s in ("test", "validation"):  # domain quota left (clusters too big for a subdomain): fill from train
            for k, unit in enumerate(order):
                if need_dom[s] <= 0:
                    break
                if placed[k] == "train" and len(unit) <= need_dom[s]:
                    placed[k] = s
                    need_dom[s] -= len(unit)
        for k, unit in enumerate(order):
            for i in unit:
                split[i] = placed[k]
    return split


def leakage(fingerprints: list[int], split: list[str], threshold: int) -> dict:
    """Every pair within ``threshold`` (exact search), and how many of them cross a split boundary."""
    pairs = nd.near_duplicate_pairs(np.array(fingerprints, dtype=np.uint64), threshold)
    crossing = [(int(i), int(j)) for i, j in pairs.tolist() if split[i] != split[j]]
    return {"threshold": threshold, "pairs_within_threshold": len(pairs), "pairs_across_splits": len(crossing)}
