"""Near-duplicate search: exactly the pairs of a plain double loop, clusters, deduplication, fingerprints."""

from __future__ import annotations

import functools
import random
import statistics

import numpy as np
import pytest
import simhash

from culturesafe_ext import near_duplicates as nd

THRESHOLDS = [0, 1, 3, 10, 32, 63, 64]


def loop_pairs(fps: list[int], threshold: int) -> list[tuple[int, int]]:
    """The definition: every i < j with at most ``threshold`` differing bits."""
    return [
        (i, j) for i in range(len(fps)) for j in range(i + 1, len(fps)) if bin(fps[i] ^ fps[j]).count("1") <= threshold
    ]


def flip(value: int, bits) -> int:
    for b in bits:
        value ^= 1 << int(b)
    return value


@functools.cache
def fingerprint_set(kind: str) -> tuple[int, ...]:
    rng = random.Random(f"near-dup-{kind}")
    if kind == "random":
        return tuple(rng.getrandbits(64) for _ in range(200))
    # Adversarial: a base with the top bit set and planted variants at every distance 0..64 (twice each,
    # so distance-0 twins and variants close to each other), exact copies, the extremes, and a bucket of
    # 70 identical values plus close variants (big enough for the dense path of multi-index hashing).
    base = rng.getrandbits(63) | (1 << 63)
    fps = [base]
    for d in range(65):
        for _ in range(2):
            fps.append(flip(base, rng.sample(range(64), d)))
    fps += [0, 2**64 - 1, 2**63, 2**63 - 1, 1, base, base]
    other = rng.getrandbits(64) | (1 << 63)
    fps += [other] * 70 + [flip(other, rng.sample(range(64), rng.randint(1, 12))) for _ in range(40)]
    fps += [rng.getrandbits(64) for _ in range(60)]
    rng.shuffle(fps)
    return tuple(fps)


@functools.cache
def expected(kind: str, threshold: int) -> list[tuple[int, int]]:
    return loop_pairs(list(fingerprint_set(kind)), threshold)


def as_list(pairs: np.ndarray) -> list[tuple[int, int]]:
    assert pairs.dtype == np.int64 and pairs.ndim == 2 and pairs.shape[1] == 2
    return [tuple(p) for p in pairs.tolist()]


def chunk_counts(threshold: int) -> list[int]:
    """Chunk counts to try: the classic threshold + 1 (capped at 64) and others with non-zero radii.

    Only feasible ones (few enough flip masks); at large thresholds a few, as every pair is a candidate.
    """
    classic = min(threshold + 1, 64)
    others = {1, 2, 3, 4, 5, 6, 8, 16} if threshold <= 20 else {8, 40}
    counts = sorted({classic} | {c for c in others if c <= classic})
    return [c for c in counts if nd._mih_plan(300, threshold, c)[1]]


@pytest.mark.parametrize("kind", ["random", "adversarial"])
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_both_implementations_match_the_double_loop(kind: str, threshold: int) -> None:
    fps = list(fingerprint_set(kind))
    want = expected(kind, threshold)
    assert as_list(nd.near_duplicate_pairs(fps, threshold, method="bruteforce")) == want
    assert as_list(nd.near_duplicate_pairs(fps, threshold, method="mih")) == want
    assert as_list(nd.near_duplicate_pairs(fps, threshold)) == want  # auto
    for chunks in chunk_counts(threshold):
        assert as_list(nd.near_duplicate_pairs(fps, threshold, method="mih", chunks=chunks)) == want, chunks


def test_adversarial_set_really_is_adversarial() -> None:
    fps = fingerprint_set("adversarial")
    assert max(fps) >= 2**63 and 0 in fps and 2**64 - 1 in fps
    assert len(expected("adversarial", 0)) > 100  # many exact twins
    assert len(expected("adversarial", 10)) > len(expected("adversarial", 0))


@pytest.mark.parametrize(
    "settings",
    [
        {"_DENSE_MIN": 1},  # every bucket pair through dense tiles
        {"_DENSE_MIN": 10**12, "_BATCH": 7},  # everything gathered, in many tiny batches
        {"_TABLE_BITS": 0},  # bucket lookup by binary search instead of a table
        {"_HAS_BITWISE_COUNT": False},  # byte-table popcount (numpy < 2.0)
        {"_ROWS": 3, "_COLS": 5, "_ABOVE_DIAGONAL": np.triu(np.ones((3, 3), dtype=bool), 1)},  # ragged tiles
    ],
    ids=["dense", "gathered", "searchsorted", "byte-popcount", "tiny-tiles"],
)
@pytest.mark.parametrize("threshold", [0, 3, 10, 20])
def test_every_code_path_matches_the_double_loop(monkeypatch, settings: dict, threshold: int) -> None:
    for name, value in settings.items():
        monkeypatch.setattr(nd, name, value)
    fps = list(fingerprint_set("adversarial"))
    want = expected("adversarial", threshold)
    assert as_list(nd.near_duplicate_pairs(fps, threshold, method="bruteforce")) == want
    for chunks in chunk_counts(threshold):
        assert as_list(nd.near_duplicate_pairs(fps, threshold, method="mih", chunks=chunks)) == want, chunks


def test_popcount_byte_table_matches_bit_counting(monkeypatch) -> None:
    values = [
        0,
        1,
        2**63,
        2**64 - 1,
        0x5555555555555555,
        *(random.Random(3).getrandbits(64) for _ in range(50)),
    ]
    x = np.array(values, dtype=np.uint64)
    want = [bin(v).count("1") for v in values]
    assert nd._popcount(x).tolist() == want
    monkeypatch.setattr(nd, "_HAS_BITWISE_COUNT", False)
    assert nd._popcount(x).tolist() == want
    out = np.empty(len(values), dtype=np.uint8)
    nd._popcount(x, out=out)
    assert out.tolist() == want


@pytest.mark.parametrize("threshold", [0, 3, 10])
def test_methods_agree_at_realistic_size(threshold: int) -> None:
    """20,000 clustered fingerprints: big enough for the layouts the cost model picks in practice."""
    rng = np.random.default_rng(threshold)
    fps = rng.integers(0, 2**64 - 1, 20_000, dtype=np.uint64, endpoint=True)
    twins = rng.integers(0, 14_000, 6_000)
    noise = np.zeros(6_000, dtype=np.uint64)
    for _ in range(6):  # up to 6 random bit flips per twin
        bit = rng.integers(0, 64, 6_000).astype(np.uint64)
        noise ^= np.where(rng.random(6_000) < 0.5, np.uint64(1) << bit, np.uint64(0))
    noise[:2_000] = 0  # a third are exact copies
    fps[14_000:] = fps[twins] ^ noise
    brute = nd.near_duplicate_pairs(fps, threshold, method="bruteforce")
    assert len(brute) > 1_000
    np.testing.assert_array_equal(nd.near_duplicate_pairs(fps, threshold), brute)
    np.testing.assert_array_equal(nd.near_duplicate_pairs(fps, threshold, method="mih"), brute)
    np.testing.assert_array_equal(nd.near_duplicate_pairs(fps, threshold, method="mih", chunks=threshold + 1), brute)


def test_output_shape_and_inputs() -> None:
    for method in ("auto", "bruteforce", "mih"):
        for empty in ([], [2**64 - 1], np.array([], dtype=np.uint64)):
            got = nd.near_duplicate_pairs(empty, 10, method=method)
            assert got.shape == (0, 2) and got.dtype == np.int64
    fps = [2**64 - 1, 5, 2**64 - 2, 4]
    want = [(0, 2), (1, 3)]
    assert as_list(nd.near_duplicate_pairs(fps, 1)) == want
    assert as_list(nd.near_duplicate_pairs(np.array(fps, dtype=np.uint64), 1)) == want
    assert as_list(nd.near_duplicate_pairs(np.array(fps, dtype=np.uint64).view(np.int64), 1)) == want
    assert nd.near_duplicate_pairs([7, 7, 7], 0).tolist() == [[0, 1], [0, 2], [1, 2]]


@pytest.mark.parametrize(
    "call",
    [
        lambda: nd.near_duplicate_pairs([1, 2], -1),
        lambda: nd.near_duplicate_pairs([1, 2], 65),
        lambda: nd.near_duplicate_pairs([1, 2], 3, method="magic"),
        lambda: nd.near_duplicate_pairs([1, 2], 3, method="bruteforce", chunks=2),
        lambda: nd.near_duplicate_pairs([1, 2], 3, method="mih", chunks=5),
        lambda: nd.near_duplicate_pairs(np.zeros((2, 2), dtype=np.uint64), 3),
    ],
)
def test_bad_arguments_raise(call) -> None:
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("bad", [[-1, 2], [2**64, 1]])
def test_fingerprints_outside_64_bits_raise(bad) -> None:
    with pytest.raises(OverflowError):
        nd.near_duplicate_pairs(bad, 3)


# ---------------------------------------------------------------------------------------------- clusters


def test_clusters_hand_made() -> None:
    # 0-1-2 is a chain (0 and 2 need not be close), 4-6 a pair, 3 and 5 alone.
    assert nd.clusters(7, np.array([[0, 1], [1, 2], [4, 6]])) == [[0, 1, 2], [4, 6]]
    # Input order, repeated pairs and merging two trees do not matter; components sorted by first member.
    assert nd.clusters(8, np.array([[5, 7], [2, 3], [0, 3], [5, 7], [6, 7]])) == [[0, 2, 3], [5, 6, 7]]
    assert nd.clusters(5, np.empty((0, 2), dtype=np.int64)) == []
    assert nd.clusters(3, np.array([[1, 1]])) == []  # a self-pair is no cluster
    with pytest.raises(ValueError):
        nd.clusters(3, np.array([[0, 3]]))


def test_clusters_of_found_pairs() -> None:
    fps = list(fingerprint_set("adversarial"))
    comps = nd.clusters(len(fps), nd.near_duplicate_pairs(fps, 0))
    groups: dict[int, list[int]] = {}
    for i, v in enumerate(fps):
        groups.setdefault(v, []).append(i)
    assert comps == sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


# ---------------------------------------------------------------------------------------------- deduplicate

A = 0
B = flip(A, range(0, 6))  # d(A, B) = 6
C = flip(B, range(6, 12))  # d(B, C) = 6, d(A, C) = 12
FAR = flip(A, range(30, 64))


@pytest.fixture
def fixed_fingerprints(monkeypatch):
    """deduplicate over hand-chosen fingerprints: texts are the hex of the fingerprint."""
    monkeypatch.setattr(nd, "fingerprints", lambda texts: np.array([int(t, 16) for t in texts], dtype=np.uint64))
    return lambda *values: [nd.to_hex(v) for v in values]


def removed(result: nd.DedupResult) -> list[tuple[str, str, int]]:
    return [(r.id, r.twin_id, r.distance) for r in result.removed]


def test_deduplicate_chain_keeps_the_far_end(fixed_fingerprints) -> None:
    result = nd.deduplicate(["a", "b", "c"], fixed_fingerprints(A, B, C), threshold=10)
    assert result.kept_ids == ["a", "c"] and result.kept == [0, 2]
    assert removed(result) == [("b", "a", 6)]  # c stays: its only near twin, b, was removed
    assert result.removed[0] == nd.RemovedItem(index=1, id="b", twin_index=0, twin_id="a", distance=6)
    assert result.clusters == [[0, 1, 2]]  # ... yet a, b, c are one cluster for split assignment


def test_deduplicate_chain_from_the_middle(fixed_fingerprints) -> None:
    result = nd.deduplicate(["b", "a", "c"], fixed_fingerprints(B, A, C), threshold=10)
    assert result.kept_ids == ["b"]
    assert removed(result) == [("a", "b", 6), ("c", "b", 6)]


def test_deduplicate_twin_is_the_lowest_index_kept_item(fixed_fingerprints) -> None:
    d = flip(A, range(40, 51))  # 11 from a: kept
    x = flip(d, [40])  # 10 from a, 1 from d: both kept and within reach
    result = nd.deduplicate(["a", "far", "d", "x"], fixed_fingerprints(A, FAR, d, x), threshold=10)
    assert result.kept_ids == ["a", "far", "d"]
    assert removed(result) == [("x", "a", 10)]  # the lowest-index kept twin, not the nearest one (d)


def test_deduplicate_every_removal_has_a_kept_twin(fixed_fingerprints) -> None:
    fps = list(fingerprint_set("adversarial"))
    ids = [f"item-{i}" for i in range(len(fps))]
    result = nd.deduplicate(ids, fixed_fingerprints(*fps), threshold=3)
    kept = set(result.kept)
    assert len(result.kept) + len(result.removed) == len(fps)
    for r in result.removed:
        assert r.twin_index in kept and r.twin_index < r.index
        assert r.distance == bin(fps[r.index] ^ fps[r.twin_index]).count("1") <= 3
        assert r.twin_index == min(k for k in kept if k < r.index and bin(fps[k] ^ fps[r.index]).count("1") <= 3)
    for i, j in loop_pairs([fps[k] for k in result.kept], 3):
        raise AssertionError(f"kept items {i}, {j} are near-duplicates")


def test_deduplicate_real_texts() -> None:
    texts = ["What is the capital of France?", "what is   the capital of FRANCE?", "Name a dish from Peru."]
    result = nd.deduplicate(["q1", "q2", "q3"], texts)
    assert result.kept_ids == ["q1", "q3"]
    assert removed(result) == [("q2", "q1", 0)]
    assert result.fingerprints == [nd.fingerprint(t) for t in texts]


def test_deduplicate_rejects_bad_ids() -> None:
    with pytest.raises(ValueError):
        nd.deduplicate(["a", "a"], ["x", "y"])
    with pytest.raises(ValueError):
        nd.deduplicate(["a"], ["x", "y"])


# ---------------------------------------------------------------------------------------------- fingerprints


def test_hex_round_trip() -> None:
    assert nd.to_hex(0) == "0000000000000000"
    assert nd.to_hex(2**64 - 1) == "ffffffffffffffff"
    for v in [1, 2**63, 0xDEADBEEF, *(random.Random(5).getrandbits(64) for _ in range(20))]:
        assert len(nd.to_hex(v)) == 16 and nd.from_hex(nd.to_hex(v)) == v
    assert nd.from_hex("0xFF") == 255
    for bad in ["", "g", "0x", "1" * 17]:
        with pytest.raises(ValueError):
            nd.from_hex(bad)
    for bad in [-1, 2**64]:
        with pytest.raises(ValueError):
            nd.to_hex(bad)


def test_fingerprint_is_simhash_of_the_normalised_text() -> None:
    text = "  Ｗhat is the\tcapital of   France? "
    assert nd.normalise(text) == "what is the capital of france?"
    assert nd.fingerprint(text) == simhash.Simhash("what is the capital of france?").value
    assert nd.fingerprint(text) == nd.fingerprint("what is the capital of france?")
    assert 0 <= nd.fingerprint(text) < 2**64
    assert nd.fingerprints([text, "x"]).dtype == np.uint64


def test_near_identical_texts_are_close_and_unrelated_texts_far() -> None:
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(2000)]
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(12, 20))) for _ in range(60)]

    def one_word_changed(s: str) -> str:
        w = s.split()
        w[rng.randrange(len(w))] = rng.choice(words)
        return " ".join(w)

    def distance(a: str, b: str) -> int:
        return bin(nd.fingerprint(a) ^ nd.fingerprint(b)).count("1")

    near = [distance(s, one_word_changed(s)) for s in sentences]
    typo = [distance(s, s[:-1] + ("x" if s[-1] != "x" else "y")) for s in sentences]
    far = [distance(a, b) for a, b in zip(sentences, sentences[1:], strict=False)]
    assert statistics.median(typo) <= 6 and statistics.median(near) <= 12
    assert 26 <= statistics.median(far) <= 38  # unrelated: about half of the 64 bits differ
    assert max(near) < min(far)


def all_distances(fps: tuple[int, ...]) -> np.ndarray:
    """Hamming distance of every pair i < j (the double loop, vectorised only to be quick)."""
    a = np.array(fps, dtype=np.uint64)
    i, j = np.triu_indices(len(a), 1)
    return i, j, np.array([bin(int(x)).count("1") for x in (a[i] ^ a[j])])


@pytest.mark.parametrize("kind", ["random", "adversarial"])
def test_every_threshold_0_to_64_matches_the_double_loop(kind: str) -> None:
    """All 65 thresholds, so every distance 0..64 sits on both sides of some threshold."""
    fps = fingerprint_set(kind)
    i, j, d = all_distances(fps)
    if kind == "adversarial":
        assert set(d.tolist()) == set(range(65))  # pairs at every distance 0..64 really occur
    for threshold in range(65):
        keep = d <= threshold
        want = list(zip(i[keep].tolist(), j[keep].tolist(), strict=True))
        assert as_list(nd.near_duplicate_pairs(list(fps), threshold, method="bruteforce")) == want, threshold
        if threshold <= 16:  # the others are covered by THRESHOLDS above; the cost model is slow to plan them
            assert as_list(nd.near_duplicate_pairs(list(fps), threshold, method="mih")) == want, threshold
