"""Leakage against evaluation: a synthesized doc near an evaluation doc of the target task is removed.

Docs are compared by what they say (:func:`content_text`), not by their rendered prompts. Two tests, either one
is enough: SimHash fingerprints within Hamming distance ``threshold`` (the project's one
near-duplicate search, :mod:`culturesafe_ext.near_duplicates`) and any exact shared 13-gram of normalised
words (the n-gram contamination test of GPT-3 and lm-eval's decontamination). Each removed doc is listed with
its evaluation twin, so "0 leaked" is a checked property of the output, checked again when training reads it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from culturesafe_ext.near_duplicates import fingerprints, near_duplicate_pairs, normalise

NGRAM = 13
_WORD = re.compile(r"\w+")


ID_FIELDS = ("id", "doc_id", "description_id", "idx")  # identifiers say nothing about content


def content_text(doc: dict, keys: Sequence[str]) -> str:
    """What a doc says, not how the task formats it: its text values (and lists of texts) under ``keys``.

    Why not the rendered prompt: every prompt of a task shares its template and description, which alone can
    bring two unrelated docs within SimHash range or share a 13-gram; the doc's own texts cannot.
    """
    parts: list[str] = []
    for key in keys:
        value = doc.get(key)
        if key in ID_FIELDS:
            continue
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [v for v in value if isinstance(v, str)]
    return "\n".join(parts)


@dataclass(frozen=True)
class Leak:
    index: int  # in the synthesized texts
    twin_index: int  # in the evaluation texts
    how: str  # "simhash" or "13-gram"
    distance: int | None  # Hamming distance (simhash)
    ngram: str | None  # one shared 13-gram (13-gram)


def ngrams(text: str, n: int = NGRAM) -> set[str]:
    words = _WORD.findall(normalise(text))
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def find_leaks(synthesized: Sequence[str], evaluation: Sequence[str], threshold: int = 10) -> list[Leak]:
    """The first evaluation twin of every synthesized text that leaks (SimHash first, then 13-grams)."""
    if not synthesized or not evaluation:
        return []
    fps = np.concatenate([fingerprints(synthesized), fingerprints(evaluation)])
    n = len(synthesized)
    found: dict[int, Leak] = {}
    for i, j in near_duplicate_pairs(fps, threshold):
        if i < n <= j and int(i) not in found:
            distance = bin(int(fps[i]) ^ int(fps[j])).count("1")
            found[int(i)] = Leak(int(i), int(j) - n, "simhash", distance, None)
    index: dict[str, int] = {}
    for j, text in enumerate(evaluation):
        for gram in ngrams(text):
            index.setdefault(gram, j)
    for i, text in enumerate(synthesized):
        if i in found:
            continue
        for gram in sorted(ngrams(text)):
            if gram in index:
                found[i] = Leak(i, index[gram], "13-gram", None, gram)
                break
    return [found[i] for i in sorted(found)]
