"""The overlap statistics of ``culturesafe probe compare``: per layer, how much two groups' top MLP neurons overlap.

For each layer: the top-k neurons of each group (by mean activation, or by top-k rate), their Jaccard
overlap, the overlap of two random k-sets of that layer's width (hypergeometric expectation) with
``p_above_chance`` = P(overlap >= observed) under it, and a permutation test over documents: ``p_perm``
is the share of re-splits whose overlap is as low as the observed one. Small ``p_perm``: the two groups use
different neurons more than two groups of the same sizes drawn from their pooled documents would.

Each re-split swaps half of the smaller group's document buckets with as many buckets of the other group,
so both re-split groups are mixtures. The swap turns (A, B) into the re-split and back, so under "one
population" the observed split and each re-split are exchangeable. Unrestricted relabelling would be the
textbook choice, but top-k sets are winner-take-all: a relabelled group whose majority comes from A has
A's top set, so most relabellings reproduce the observed overlap and the test has almost no power.

There are only C(n_a, m) * C(n_b, m) distinct re-splits (m = half the smaller group): 9 for 3 documents per
group. When they are no more than ``permutations``, every one is used once and ``p_perm`` is exact; else
``permutations`` are drawn. Either way the smallest attainable ``p_perm`` is 1 / (re-splits used + 1), reported
with the count; a test that cannot reach 0.05 says so (drawing 1000 times from 9 re-splits would print
p = 0.001 that the data cannot support).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from culturesafe_ext.probing.stats_file import StatsFile

RANK_BY = ("mean", "rate")
REPORT = "probe_compare.json"
REPORT_FORMAT = "culturesafe-probe-compare/1"
ALPHA = 0.05  # the level the report marks (filled points, "p < 0.05"); a test that cannot reach it says so


@dataclass
class Group:
    label: str
    stats: StatsFile


def _scores(sums: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per-neuron score of a set of buckets: summed stat / summed tokens. sums [..., layers, width]."""
    return sums / np.maximum(tokens, 1)[..., None, None]


def _top_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of each layer's k highest scores (last axis)."""
    idx = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=-1)
    return mask


def _jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = (a & b).sum(-1)
    return inter / np.maximum((a | b).sum(-1), 1)


def chance(width: int, k: int) -> tuple[float, float]:
    """Expected intersection and expected Jaccard of two independent random k-subsets of ``width``."""
    from scipy.stats import hypergeom

    x = np.arange(0, k + 1)
    pmf = hypergeom.pmf(x, width, k, k)
    return k * k / width, float((pmf * x / (2 * k - x)).sum())


def _half_swaps(rng: np.random.Generator, n_a: int, n_b: int, count: int) -> np.ndarray:
    """Membership of re-split group 1 over the pooled buckets (A's first): [count, n_a + n_b] of 0/1, drawn."""
    m = min(n_a, n_b) // 2
    member = np.zeros((count, n_a + n_b))
    member[:, :n_a] = 1.0
    np.put_along_axis(member, rng.random((count, n_a)).argsort(axis=1)[:, :m], 0.0, axis=1)
    np.put_along_axis(member, n_a + rng.random((count, n_b)).argsort(axis=1)[:, :m], 1.0, axis=1)
    return member


def distinct_resplits(n_a: int, n_b: int) -> int:
    """How many different half swaps two groups of ``n_a`` and ``n_b`` buckets have."""
    m = min(n_a, n_b) // 2
    return comb(n_a, m) * comb(n_b, m) if m else 0


def _all_half_swaps(n_a: int, n_b: int) -> np.ndarray:
    """Every distinct half swap once, as :func:`_half_swaps`' membership rows."""
    m = min(n_a, n_b) // 2
    rows = []
    for out_of_a in combinations(range(n_a), m):
        for into_a in combinations(range(n_b), m):
            member = np.zeros(n_a + n_b)
            member[:n_a] = 1.0
            member[list(out_of_a)] = 0.0
            member[[n_a + j for j in into_a]] = 1.0
            rows.append(member)
    return np.array(rows)


def resplit_test(n_a: int, n_b: int, permutations: int) -> dict[str, Any]:
    """The permutation test's plan and reach: re-splits used, distinct ones, exact or drawn, smallest p."""
    distinct = distinct_resplits(n_a, n_b)
    used = min(permutations, distinct) if distinct else 0
    exact = bool(used) and distinct <= permutations
    p_min = 1 / (used + 1) if used else None
    note = None
    if used and p_min > ALPHA:
        note = (
            f"only {distinct} distinct re-splits of {n_a} + {n_b} documents: the smallest attainable p_perm is "
            f"{p_min:.3f}, so the test cannot reach {ALPHA}; record more documents per group"
        )
    return {"resplits": used, "resplits_distinct": distinct, "p_perm_exact": exact, "p_perm_min": p_min, "note": note}


def compare(
    a: StatsFile, b: StatsFile, k: int, rank_by: str = "mean", permutations: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per-layer overlap figures of groups ``a`` and ``b`` (see the module docstring)."""
    from scipy.stats import hypergeom

    if a.act_sum.shape[0] != b.act_sum.shape[0] or a.act_sum.shape[2] != b.act_sum.shape[2]:
        raise ValueError(f"groups differ in shape: {a.act_sum.shape} vs {b.act_sum.shape} (layers, buckets, width)")
    stat = "act_sum" if rank_by == "mean" else "topk_count"
    width = a.act_sum.shape[2]
    k = min(k, width)
    # buckets as [n, layers, width] with their token counts; empty buckets carry nothing
    parts = []
    for group in (a, b):
        keep = group.tokens > 0
        parts.append((np.moveaxis(getattr(group, stat), 1, 0)[keep].astype(np.float64), group.tokens[keep]))
    (sums_a, tok_a), (sums_b, tok_b) = parts
    if not len(tok_a) or not len(tok_b):
        raise ValueError("a group has no recorded tokens")
    top_a = _top_mask(_scores(sums_a.sum(0), tok_a.sum()), k)
    top_b = _top_mask(_scores(sums_b.sum(0), tok_b.sum()), k)
    observed = _jaccard(top_a, top_b)
    inter = (top_a & top_b).sum(-1)

    pooled = np.concatenate([sums_a, sums_b])
    pooled_tok = np.concatenate([tok_a, tok_b]).astype(np.float64)
    flat = pooled.reshape(len(pooled_tok), -1)
    total, total_tok = flat.sum(0), pooled_tok.sum()
    rng = np.random.default_rng(seed)
    test = resplit_test(len(tok_a), len(tok_b), permutations)  # one bucket in a group: no re-split at all
    permutations = test["resplits"]
    every = _all_half_swaps(len(tok_a), len(tok_b)) if test["p_perm_exact"] else None
    perm_j = np.empty((permutations, observed.shape[0]))
    chunk = max(1, min(permutations, 2**26 // max(flat.shape[1], 1)))
    for start in range(0, permutations, chunk):
        m = min(chunk, permutations - start)
        member = every[start : start + m] if every is not None else _half_swaps(rng, len(tok_a), len(tok_b), m)
        s_a, t_a = member @ flat, member @ pooled_tok
        s_b, t_b = total - s_a, total_tok - t_a
        shape = (m, *observed.shape, width)
        top_1 = _top_mask(_scores(s_a.reshape(shape), t_a), k)
        perm_j[start : start + m] = _jaccard(top_1, _top_mask(_scores(s_b.reshape(shape), t_b), k))
    expected_inter, expected_j = chance(width, k)
    layers = a.meta.get("layers") or [str(i) for i in range(observed.shape[0])]
    rows = []
    for i, name in enumerate(layers):
        rows.append(
            {
                "layer": i,
                "module": name,
                "width": width,
                "k": k,
                "intersection": int(inter[i]),
                "jaccard": float(observed[i]),
                "expected_intersection": expected_inter,
                "expected_jaccard": expected_j,
                "p_above_chance": float(hypergeom.sf(inter[i] - 1, width, k, k)),
                "p_perm": float((1 + (perm_j[:, i] <= observed[i]).sum()) / (permutations + 1))
                if permutations
                else None,
                "resplit_jaccard_median": float(np.median(perm_j[:, i])) if permutations else None,
                "resplit_jaccard_q05": float(np.quantile(perm_j[:, i], 0.05)) if permutations else None,
                "resplit_jaccard_q95": float(np.quantile(perm_j[:, i], 0.95)) if permutations else None,
                **{key: test[key] for key in ("resplits", "resplits_distinct", "p_perm_exact", "p_perm_min")},
                "p_perm_note": test["note"],
            }
        )
    return rows


def _file_part(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "group"


def compare_groups(
    groups: list[Group], k: int, rank_by: str = "mean", permutations: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Every pair of groups: its settings and :func:`compare`'s per-layer rows (``probe_compare.json``'s
    ``comparisons``)."""
    results = []
    for ga, gb in combinations(groups, 2):
        rows = compare(ga.stats, gb.stats, k, rank_by, permutations, seed)
        results.append(
            {
                "a": ga.label,
                "b": gb.label,
                "rank_by": rank_by,
                "permutations": rows[0]["resplits"],
                "resplits_distinct": rows[0]["resplits_distinct"],
                "p_perm_exact": rows[0]["p_perm_exact"],
                "p_perm_min": rows[0]["p_perm_min"],
                "p_perm_note": rows[0]["p_perm_note"],
                "seed": seed,
                "k": rows[0]["k"],
                "width": rows[0]["width"],
                "figure": f"probe_compare_{len(results) + 1}_{_file_part(ga.label)}_vs_{_file_part(gb.label)}.png",
                "layers": rows,
            }
        )
    return results


def group_info(group: Group) -> dict[str, Any]:
    """What ``probe_compare.json`` says about a group: its files, model, tasks, token and document counts."""
    return {
        "files": group.stats.sources,
        "model": group.stats.meta.get("model"),
        "tasks": group.stats.meta.get("task"),
        "tokens": group.stats.meta.get("tokens"),
        "n_tokens": group.stats.n_tokens,
        "n_docs": group.stats.meta.get("n_docs"),
    }
