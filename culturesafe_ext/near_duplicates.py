"""The project's one near-duplicate search: 64-bit SimHash fingerprints and exact Hamming-radius pairs.

Builders fingerprint every prompt, find all pairs within a Hamming radius, keep near-duplicate clusters
inside one split and drop repeats with a report of what each dropped item duplicated. Everything here is
exact: :func:`near_duplicate_pairs` returns precisely the pairs a double loop over
``bin(a ^ b).count("1") <= threshold`` returns, only faster (blocked numpy, or multi-index hashing).
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import simhash

__all__ = [
    "DedupResult",
    "RemovedItem",
    "clusters",
    "deduplicate",
    "fingerprint",
    "fingerprints",
    "from_hex",
    "near_duplicate_pairs",
    "normalise",
    "to_hex",
]

_MASK64 = (1 << 64) - 1
_WHITESPACE = re.compile(r"\s+")


# --------------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC, lowercase, whitespace runs collapsed to one space, ends stripped.

    Why: formatting variants of one prompt (full-width letters, case, line wrapping, double spaces)
    must not count as differences. ``simhash``'s own tokenizer also lowercases and drops every
    non-word character (spaces included) before taking 4-character shingles, so today the whitespace
    step changes no fingerprint; it is kept so the normal form is canonical on its own and stays right
    if the tokenizer changes. NFKC is the part the package does not do (``"Ｆｏｏ"`` == ``"foo"``).
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


@functools.lru_cache(maxsize=1 << 16)
def fingerprint(text: str) -> int:
    """64-bit SimHash (``simhash.Simhash``, 4-character shingles, md5) of the normalised text.

    Note: texts with no word character at all ("", "?!") share one fingerprint, so they are
    near-duplicates of each other. Remembered for the last 65,536 texts: a pipeline compares the same texts
    several times (near-duplicates, then leakage, then the leakage re-check), and the pure-Python SimHash
    costs ~0.4 ms a text.
    """
    return int(simhash.Simhash(normalise(text)).value)


def fingerprints(texts: Sequence[str]) -> np.ndarray:
    """Fingerprints of many texts as a uint64 array (the input :func:`near_duplicate_pairs` wants)."""
    return np.array([fingerprint(t) for t in texts], dtype=np.uint64)


def to_hex(fp: int) -> str:
    """16 lowercase hex digits: a fixed-width, JSON-safe form (JSON numbers lose bits above 2**53)."""
    fp = int(fp)
    if not 0 <= fp <= _MASK64:
        raise ValueError(f"not a 64-bit fingerprint: {fp}")
    return f"{fp:016x}"


def from_hex(text: str) -> int:
    """Inverse of :func:`to_hex` (accepts 1 to 16 hex digits, optional ``0x``)."""
    digits = text[2:] if text[:2].lower() == "0x" else text
    if not 1 <= len(digits) <= 16 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"not a 64-bit hex fingerprint: {text!r}")
    return int(digits, 16)


# --------------------------------------------------------------------------------------------------
# Popcount
# --------------------------------------------------------------------------------------------------

_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Bits set in each uint64 (as uint8): ``np.bitwise_count`` if numpy has it, else a byte table."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(x, out=out)
    x = np.ascontiguousarray(x)
    counts = _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)
    if out is None:
        return counts
    out[...] = counts
    return out


# --------------------------------------------------------------------------------------------------
# Exact pair search
# --------------------------------------------------------------------------------------------------

_ROWS, _COLS = 64, 4096  # dense tile: 256k XORs, 2 MiB of uint64, stays in L2/L3 cache
_ABOVE_DIAGONAL = np.triu(np.ones((_ROWS, _ROWS), dtype=bool), 1)
_BATCH = 1 << 20  # candidate pairs verified per batch in the gathered path (~40 MiB of temporaries)
_DENSE_MIN = 2048  # bucket pairs with at least this many candidates go to the dense (tile) path
_TABLE_BITS = 20  # chunk values up to this width are looked up in a direct table, wider ones by search
_MAX_MASKS = 1 << 16  # flip masks per chunk that multi-index hashing will enumerate


def _as_uint64(fps: Sequence[int] | np.ndarray) -> np.ndarray:
    """1-d uint64 array; signed numpy ints are read as two's complement (int64 storage of a uint64)."""
    if isinstance(fps, np.ndarray):
        if fps.ndim != 1:
            raise ValueError(f"fingerprints must be 1-d, got shape {fps.shape}")
        if fps.dtype == np.uint64:
            return fps
        if fps.dtype.kind == "i":
            return fps.astype(np.int64).view(np.uint64)
        if fps.dtype.kind == "u":
            return fps.astype(np.uint64)
        raise TypeError(f"fingerprints must be integers, got dtype {fps.dtype}")
    return np.array([int(v) for v in fps], dtype=np.uint64)  # OverflowError outside 0 .. 2**64-1


def _dense_hits(a: np.ndarray, b: np.ndarray, threshold: int, triangle: bool) -> tuple[np.ndarray, np.ndarray]:
    """Local indices (i, j) with popcount(a[i] ^ b[j]) <= threshold, by XOR over cache-sized tiles.

    ``triangle``: ``a`` and ``b`` are the same array and only j > i is wanted (tiles below the diagonal
    are skipped). Memory: one tile, never len(a) x len(b).
    """
    na, nb = len(a), len(b)
    rows_cap, cols_cap = min(_ROWS, na), min(_COLS, nb)
    xor = np.empty((rows_cap, cols_cap), dtype=np.uint64)
    count = np.empty((rows_cap, cols_cap), dtype=np.uint8)
    hit = np.empty((rows_cap, cols_cap), dtype=bool)
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    for i0 in range(0, na, _ROWS):
        rows = a[i0 : i0 + _ROWS, None]
        r = rows.shape[0]
        for j0 in range(i0 if triangle else 0, nb, _COLS):
            cols = b[j0 : j0 + _COLS]
            c = cols.shape[0]
            x, cnt, h = xor[:r, :c], count[:r, :c], hit[:r, :c]
            np.bitwise_xor(rows, cols, out=x)
            _popcount(x, out=cnt)
            np.less_equal(cnt, threshold, out=h)
            if triangle and j0 == i0:  # diagonal tile: keep j > i only (else every self-pair is a hit)
                h[:, :r] &= _ABOVE_DIAGONAL[:r, :r]
            hit_rows = np.flatnonzero(h.any(axis=1))
            if not len(hit_rows):
                continue
            ii, jj = np.nonzero(h[hit_rows])
            ii = hit_rows[ii] + i0
            jj += j0
            out_i.append(ii)
            out_j.append(jj)
    if not out_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)


def _sorted_pairs(i: list[np.ndarray], j: list[np.ndarray], n: int) -> np.ndarray:
    """Stack (min, max) index pairs into an (n_pairs, 2) int64 array sorted lexicographically."""
    if not i:
        return np.empty((0, 2), dtype=np.int64)
    a, b = np.concatenate(i), np.concatenate(j)
    key = np.sort(np.minimum(a, b) * n + np.maximum(a, b))  # n < 3e9 keeps this inside int64
    return np.stack(np.divmod(key, n), axis=1).astype(np.int64)


def _pairs_bruteforce(fps: np.ndarray, threshold: int) -> np.ndarray:
    """Every pair by blocked all-against-all XOR + popcount: n^2/2 work, ~1 ns per pair, no index."""
    i, j = _dense_hits(fps, fps, threshold, triangle=True)
    return _sorted_pairs([i], [j], len(fps))


# Cost model used to choose the method and the multi-index layout. Unit costs are CPU seconds measured
# on the development machine (AMD EPYC, numpy 2.4, one thread; see benchmarks/bench_simhash.py); only
# their ratios matter. Bucket sizes are those of uniformly random fingerprints, a fair model for
# SimHash bits; near-duplicate clusters add true pairs that every method has to report anyway.
_COST_DENSE = 0.9e-9  # per XOR computed in a dense tile (XOR, popcount, compare)
_COST_TILE = 15e-6  # per dense tile (numpy call overhead)
_COST_GATHER = 5e-9  # per candidate verified through gathered index pairs
_COST_RUN = 50e-9  # per run (one item against one bucket) in the gathered path
_COST_PROBE = 10e-9  # per (flip mask, occupied bucket) table probe
_COST_SORT = 100e-9  # per item per chunk (argsort, bucket bookkeeping)
_COST_CHUNK = 1e-3  # fixed per chunk (Python and numpy call overhead)


def _tiles(rows: float, cols: float) -> int:
    return math.ceil(rows / _ROWS) * math.ceil(cols / _COLS)


def _bruteforce_cost(n: int) -> float:
    """Modelled seconds for the blocked all-against-all search."""
    return n * n / 2 * _COST_DENSE + _tiles(n, n) / 2 * _COST_TILE


@functools.lru_cache(maxsize=4096)
def _ball(width: int, radius: int) -> int:
    """Number of ``width``-bit masks with at most ``radius`` bits set."""
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


def _chunk_cost(n: int, width: int, radius: int) -> float:
    """Modelled seconds for one chunk of multi-index hashing over ``n`` random fingerprints."""
    ball = _ball(width, radius)
    if ball > _MAX_MASKS:
        return math.inf
    buckets = 2.0**width
    k = n / buckets  # mean bucket size
    occupied = -math.expm1(-k)  # share of buckets (and of partner buckets) that are not empty
    masks = ball - 1
    probe = _COST_PROBE if width <= _TABLE_BITS else 4 * _COST_PROBE  # table lookup or binary search
    cost = _COST_CHUNK + n * _COST_SORT + masks * buckets * occupied * probe
    if masks and width <= _TABLE_BITS:
        cost += buckets * _COST_PROBE / 8  # filling the lookup table
    if k * (k - 1) / 2 >= _DENSE_MIN:  # mask 0, inside buckets
        cost += buckets * (_tiles(k, k) * _COST_TILE + (k * k / 2 + _ROWS / 2 * k) * _COST_DENSE)
    else:
        cost += n * occupied * _COST_RUN + n * k / 2 * _COST_GATHER
    if masks and k * k >= _DENSE_MIN:  # other masks, between buckets
        cost += masks * buckets / 2 * (_tiles(k, k) * _COST_TILE + k * k * _COST_DENSE)
    elif masks:
        cost += masks * (n * occupied / 2 * _COST_RUN + n * k / 2 * _COST_GATHER)
    return cost


def _mih_plan(n: int, threshold: int, chunks: int) -> tuple[float, list[tuple[int, int, int]]]:
    """(modelled cost, [(bit offset, width, radius), ...]) for ``chunks`` chunks at ``threshold``.

    Generalised pigeonhole: if d(a, b) <= threshold and sum(radius_c + 1) > threshold, some chunk c
    differs in at most radius_c bits. Radii share the threshold + 1 units evenly; with threshold + 1
    chunks all radii are 0 (the classic "some chunk is equal"). Chunks of one radius get equal widths;
    the split of the 64 bits between the (at most two) radius classes is the cheapest by the model.
    """
    base, extra = divmod(threshold + 1, chunks)
    if base == 0:
        raise ValueError(f"more chunks ({chunks}) than threshold + 1 ({threshold + 1}) gains nothing")
    classes = [(extra, base), (chunks - extra, base - 1)]  # (how many chunks, radius)
    classes = [(k, r) for k, r in classes if k]

    def spread(bits: int, k: int) -> list[int]:
        return [bits // k + (1 if i < bits % k else 0) for i in range(k)]

    best: tuple[float, list[tuple[int, int]]] = (math.inf, [])
    (k0, r0), rest = classes[0], classes[1:]
    low, high = (k0, 64 - rest[0][0]) if rest else (64, 64)
    for bits0 in range(low, high + 1):
        widths = [(w, r0) for w in spread(bits0, k0)]
        if rest:
            widths += [(w, rest[0][1]) for w in spread(64 - bits0, rest[0][0])]
        cost = sum(_chunk_cost(n, w, r) for w, r in widths)
        if cost < best[0]:
            best = (cost, widths)
    layout, offset = [], 0
    for width, radius in best[1]:
        layout.append((offset, width, radius))
        offset += width
    return best[0], layout


def _choose(n: int, threshold: int) -> tuple[str, list[tuple[int, int, int]]]:
    """Cheapest by the cost model: ("bruteforce", []) or ("mih", layout)."""
    best = (_bruteforce_cost(n), "bruteforce", [])
    for chunks in range(1, min(threshold + 1, 64) + 1):
        cost, layout = _mih_plan(n, threshold, chunks)
        if cost < best[0]:
            best = (cost, "mih", layout)
    return best[1], best[2]


def _flip_masks(width: int, radius: int) -> np.ndarray:
    """All non-zero ``width``-bit masks with at most ``radius`` bits set, as uint64."""
    masks = [
        sum(1 << b for b in bits)
        for k in range(1, min(radius, width) + 1)
        for bits in itertools.combinations(range(width), k)
    ]
    return np.array(masks, dtype=np.uint64)


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l), without a Python loop."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)


def _pairs_mih(fps: np.ndarray, threshold: int, chunks: int | None = None) -> np.ndarray:
    """Multi-index hashing: only pairs that (nearly) agree on some chunk are ever compared.

    ``chunks``: how many pieces the 64 bits are cut into (see :func:`_mih_plan`); ``threshold + 1`` is
    the classic pigeonhole (candidates share one chunk exactly), ``None`` lets the cost model choose
    (threshold 10, 50k to 500k items: 6 chunks, radii 1, 1, 1, 1, 1, 0; about 3x faster than 11).
    Per chunk: sort by the chunk's value into buckets; compare each bucket with itself and with the
    buckets whose value differs by a flip mask of <= radius bits; verify each candidate's full distance.
    A pair close on several chunks is emitted only from the first such chunk, so no pair twice. Big
    bucket pairs go through dense tiles, the many small ones through gathered index pairs in batches.
    """
    n = len(fps)
    if chunks is None:
        chunks = min(range(1, min(threshold + 1, 64) + 1), key=lambda m: _mih_plan(n, threshold, m)[0])
    if not 1 <= chunks <= min(threshold + 1, 64):
        raise ValueError(f"chunks must be in 1..{min(threshold + 1, 64)}, got {chunks}")
    _, layout = _mih_plan(n, threshold, chunks)
    if not layout:
        raise ValueError(f"chunks={chunks} at threshold {threshold} needs too many flip masks per chunk")
    return _pairs_mih_layout(fps, threshold, layout)


def _pairs_mih_layout(fps: np.ndarray, threshold: int, layout: list[tuple[int, int, int]]) -> np.ndarray:
    """Multi-index hashing over an explicit layout [(bit offset, width, radius), ...]."""
    n = len(fps)
    assert sum(w for _, w, _ in layout) == 64 and sum(r + 1 for _, _, r in layout) > threshold
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []

    for c, (offset, width, radius) in enumerate(layout):
        earlier = [(o, (1 << w) - 1, r) for o, w, r in layout[:c]]
        values = (fps >> np.uint64(offset)) & np.uint64((1 << width) - 1)
        small_dtype = np.uint16 if width <= 16 else np.uint32 if width <= 32 else np.uint64
        order = np.argsort(values.astype(small_dtype), kind="stable")  # radix sort for <= 16 bits
        sorted_values, sorted_fps = values[order], fps[order]
        starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]]) if n else np.empty(0, int)
        counts = np.diff(np.r_[starts, n])
        buckets = sorted_values[starts]  # ascending, unique

        def emit(pa: np.ndarray, pb: np.ndarray, earlier=earlier, order=order, sorted_fps=sorted_fps) -> None:
            """Keep verified hits (sorted positions) unless an earlier chunk already found them."""
            if earlier and len(pa):
                x = sorted_fps[pa] ^ sorted_fps[pb]
                fresh = np.ones(len(pa), dtype=bool)
                for o, m, r in earlier:
                    fresh &= _popcount((x >> np.uint64(o)) & np.uint64(m)) > r
                pa, pb = pa[fresh], pb[fresh]
            out_i.append(order[pa])
            out_j.append(order[pb])

        def verify_runs(left: np.ndarray, run_start: np.ndarray, run_len: np.ndarray, sorted_fps=sorted_fps) -> None:
            """Candidates (left[k], run_start[k] + 0 .. run_len[k]-1), verified in bounded batches."""
            ends = np.cumsum(run_len)
            cuts = np.searchsorted(ends, np.arange(_BATCH, int(ends[-1]) if len(ends) else 0, _BATCH), "right")
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(left)], strict=True):
                if lo == hi:
                    continue
                lens = run_len[lo:hi]
                pb = _expand(run_start[lo:hi], lens)
                good = _popcount(np.repeat(sorted_fps[left[lo:hi]], lens) ^ sorted_fps[pb]) <= threshold
                hits = np.flatnonzero(good)
                if len(hits):
                    emit(np.repeat(left[lo:hi], lens)[hits], pb[hits])

        # Flip mask 0: pairs inside one bucket (big buckets as dense triangles, the rest gathered).
        big = counts * (counts - 1) // 2 >= _DENSE_MIN
        for s, k in zip(starts[big], counts[big], strict=True):
            block = sorted_fps[s : s + k]
            ia, ib = _dense_hits(block, block, threshold, triangle=True)
            emit(ia + s, ib + s)
        small = ~big & (counts > 1)
        if small.any():
            member = _expand(starts[small], counts[small])
            bucket_end = np.repeat(starts[small] + counts[small], counts[small])
            verify_runs(member, member + 1, bucket_end - member - 1)

        # Non-zero flip masks: bucket v against bucket v ^ mask, each unordered bucket pair once (v < w).
        # Masks go in blocks: few numpy calls per mask, temporaries of about _BATCH items.
        masks = _flip_masks(width, radius)
        if not len(masks) or not n:
            continue
        if width <= _TABLE_BITS:
            table = np.full(1 << width, -1, dtype=np.int32 if n < 2**31 else np.int64)
            table[buckets] = np.arange(len(buckets))
        per_block = max(1, _BATCH // n)
        for m0 in range(0, len(masks), per_block):
            partner_values = buckets[None, :] ^ masks[m0 : m0 + per_block, None]
            if width <= _TABLE_BITS:
                partner = table[partner_values]
            else:
                pos = np.minimum(np.searchsorted(buckets, partner_values), len(buckets) - 1)
                partner = np.where(buckets[pos] == partner_values, pos, -1)
            mask_index, g = np.nonzero((partner >= 0) & (buckets[None, :] < partner_values))
            if not len(g):
                continue
            h = partner[mask_index, g].astype(np.int64)
            big = counts[g] * counts[h] >= _DENSE_MIN
            for gg, hh in zip(g[big], h[big], strict=True):
                sa, sb = starts[gg], starts[hh]
                ia, ib = _dense_hits(
                    sorted_fps[sa : sa + counts[gg]],
                    sorted_fps[sb : sb + counts[hh]],
                    threshold,
                    triangle=False,
                )
                emit(ia + sa, ib + sb)
            g, h = g[~big], h[~big]
            if len(g):
                left = _expand(starts[g], counts[g])
                verify_runs(left, np.repeat(starts[h], counts[g]), np.repeat(counts[h], counts[g]))

    return _sorted_pairs(out_i, out_j, n)


def near_duplicate_pairs(
    fingerprints: Sequence[int] | np.ndarray,
    threshold: int = 10,
    *,
    method: str = "auto",
    chunks: int | None = None,
) -> np.ndarray:
    """Every pair (i, j), i < j, with Hamming distance ``popcount(fp[i] ^ fp[j]) <= threshold``. Exact.

    Returns an (n_pairs, 2) int64 array sorted lexicographically. ``fingerprints``: Python ints in
    0 .. 2**64-1 or an integer array (int64 is read as the two's complement of a uint64).
    ``method``: "bruteforce" (blocked all-against-all), "mih" (multi-index hashing) or "auto", which
    takes the one the cost model says is cheaper: brute force for small inputs and large thresholds,
    multi-index hashing otherwise (see benchmarks/bench_simhash.py for the measurements behind it).
    ``chunks`` (method "mih" only): the number of chunks, ``threshold + 1`` being the classic
    pigeonhole; default: the cheapest by the cost model.
    Memory is O(n + pairs) plus fixed-size blocks; never an n x n matrix.
    """
    threshold = operator.index(threshold)
    if not 0 <= threshold <= 64:
        raise ValueError(f"threshold must be in 0..64, got {threshold}")
    if method not in ("auto", "bruteforce", "mih") or (chunks is not None and method != "mih"):
        raise ValueError(f"method must be 'auto', 'bruteforce' or 'mih' (chunks only with 'mih'), got {method!r}")
    fps = _as_uint64(fingerprints)
    if len(fps) < 2:
        return np.empty((0, 2), dtype=np.int64)
    if method == "auto":
        method, layout = _choose(len(fps), threshold)
        if method == "mih":
            return _pairs_mih_layout(fps, threshold, layout)
    if method == "bruteforce":
        return _pairs_bruteforce(fps, threshold)
    return _pairs_mih(fps, threshold, chunks)


# --------------------------------------------------------------------------------------------------
# Clusters and deduplication
# --------------------------------------------------------------------------------------------------


def clusters(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components of the near-duplicate graph, size >= 2 only (union-find).

    Members sorted, components sorted by their first (smallest) member. Near-duplicacy is not
    transitive, so a component can hold items far apart (a-b close, b-c close, a-c far): builders use
    components, not pairs, to keep everything related inside one split.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"pair index outside 0..{n - 1}")
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for i, j in pairs.tolist():
        ri, rj = find(i), find(j)
        if ri != rj:  # the smaller index becomes the root, so a root is its component's first member
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for x in np.unique(pairs).tolist():  # ascending: members come out sorted, groups by first member
        groups.setdefault(find(x), []).append(x)
    return [members for members in groups.values() if len(members) >= 2]


@dataclass(frozen=True)
class RemovedItem:
    """One dropped item and the kept item it duplicated (so nothing disappears unexplained)."""

    index: int
    id: str
    twin_index: int
    twin_id: str
    distance: int


@dataclass(frozen=True, eq=False)  # eq=False: it holds a numpy array
class DedupResult:
    """Outcome of :func:`deduplicate`; indices refer to the input order."""

    threshold: int
    fingerprints: list[int]
    kept: list[int]
    kept_ids: list[str]
    removed: list[RemovedItem]
    pairs: np.ndarray  # all near-duplicate pairs, as near_duplicate_pairs returns them

    @property
    def clusters(self) -> list[list[int]]:
        """Near-duplicate components (see :func:`clusters`), e.g. to keep each inside one split."""
        return clusters(len(self.fingerprints), self.pairs)


def deduplicate(ids: Sequence[str], texts: Sequence[str], threshold: int = 10) -> DedupResult:
    """Greedy first-wins deduplication, with every removal explained.

    Items are processed in input order. An item is removed if its fingerprint is within ``threshold``
    of an item already kept; its twin is the lowest-index such kept item. Otherwise it is kept. So in
    a chain a-b-c (a~b, b~c, a far from c) a is kept, b is removed as a's twin, and c is kept: c is
    not within reach of any kept item. (Use :attr:`DedupResult.clusters` to keep a, c in one split.)
    """
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique (removals are reported by id)")
    fps = fingerprints(texts)
    pairs = near_duplicate_pairs(fps, threshold)
    kept = np.ones(len(ids), dtype=bool)
    removed: list[RemovedItem] = []
    by_later = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]  # by j, then i: earlier partners in order
    current, done = -1, False
    for i, j in by_later.tolist():
        if j != current:
            current, done = j, False
        if done or not kept[i]:
            continue
        kept[j], done = False, True
        distance = bin(int(fps[i]) ^ int(fps[j])).count("1")
        removed.append(RemovedItem(j, ids[j], i, ids[i], distance))
    kept_index = np.flatnonzero(kept).tolist()
    return DedupResult(
        threshold=threshold,
        fingerprints=[int(v) for v in fps],
        kept=kept_index,
        kept_ids=[ids[k] for k in kept_index],
        removed=removed,
        pairs=pairs,
    )
