"""Reference audit of the CulturaX release: do a row's reference answers address its question?

Rows whose references look off topic are flagged with the reason (never deleted); the builder and the
generator both call :func:`audit_references`.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from .culturax_source import SourceRow

SUSPECT_THRESHOLD = 0.025  # tf-idf cosine between a question and its references, calibrated by eye (card)


_STOP = frozenset(
    """a an the and or but if of to in on at for from by with about as into like through over after before between
    under is are was were be been being am do does did doing have has had having i me my we our you your he she it its
    they them their this that these those what which who whom whose when where why how can could should would will
    shall may might must not no so than too very just also any some such own same other more most many much few each
    every all both only there here then out up down off again further once don really want know heard think make sure
    get going way thing things help tips give advice someone people person""".split()
)


def content_stems(text: str) -> set[str]:
    """Lower-cased words minus stop words, cut to 5 letters (a crude stem: Germany ~ Germans)."""
    words = re.findall(r"[a-z]+", text.lower().replace("\u2019", "'"))
    return {w[:5] for w in words if len(w) > 2 and w not in _STOP}


def reference_relevance(questions: list[str], references: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF-IDF cosine of each question with its own references; and the question its references fit best.

    Returns (own similarity, index of the best other question, its similarity). Why tf-idf on stems:
    it needs no model download, is exact to reproduce, and a shared rare word ("salsa", "Holi") weighs
    more than a common one ("culture").
    """
    q_sets = [content_stems(q) for q in questions]
    r_sets = [content_stems(r) for r in references]
    vocab = {w: i for i, w in enumerate(sorted(set().union(*q_sets, *r_sets)))}
    df = Counter(w for s in q_sets + r_sets for w in s)
    n_docs = len(q_sets) + len(r_sets)
    idf = np.array([math.log(n_docs / df[w]) for w in vocab])

    def matrix(sets: list[set[str]]) -> np.ndarray:
        m = np.zeros((len(sets), len(vocab)))
        for i, s in enumerate(sets):
            cols = [vocab[w] for w in s]
            m[i, cols] = idf[cols]
        return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)

    sim = matrix(r_sets) @ matrix(q_sets).T  # sim[i, j]: references of i vs question j
    own = np.diag(sim).copy()
    np.fill_diagonal(sim, -1.0)
    best = sim.argmax(axis=1) if len(questions) > 1 else np.zeros(len(questions), dtype=int)
    return own, best, sim.max(axis=1) if len(questions) > 1 else np.zeros(len(questions))


def audit_references(rows: list[SourceRow], threshold: float = SUSPECT_THRESHOLD) -> list[str]:
    """Per row: "" if its references look on topic, else the reason it is flagged (with the figures)."""
    refs = [f"{r.helpful} {r.harmless} {r.honest}" for r in rows]
    own, best, best_sim = reference_relevance([r.question for r in rows], refs)
    reasons = []
    for i, _ in enumerate(rows):
        if own[i] >= threshold:
            reasons.append("")
            continue
        reason = f"question and references share almost no content words (tf-idf cosine {own[i]:.2f} < {threshold})"
        if best_sim[i] >= own[i] + 0.1:
            reason += f"; the references fit the question of row {rows[best[i]].row} better ({best_sim[i]:.2f})"
        reasons.append(reason)
    return reasons
