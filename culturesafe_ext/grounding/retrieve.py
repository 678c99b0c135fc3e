"""BM25 retrieval (the ``bm25s`` library) over a knowledge source, with recall against gold descriptions.

Knowledge sources: ``docs`` (default: the distinct descriptions of the documents being evaluated),
``adaculturesafe`` (every description of the dataset through the one loader, honouring
``culturesafe_data``), or a JSONL file with one passage per line (``{"id": ..., "text": ...}``;
``description_id`` / ``description`` are accepted as the same fields).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS, ADACULTURESAFE = "docs", "adaculturesafe"


@dataclass(frozen=True)
class Passage:
    id: str
    text: str


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    score: float
    rank: int


def passages_from_docs(docs: Iterable[Mapping[str, Any]]) -> list[Passage]:
    """Distinct (description_id, description) pairs of the docs, in first-seen order."""
    seen: dict[str, str] = {}
    for doc in docs:
        did, text = doc.get("description_id"), doc.get("description")
        if did and text and did not in seen:
            seen[str(did)] = str(text)
    return [Passage(i, t) for i, t in seen.items()]


def passages_from_jsonl(path: str | Path) -> list[Passage]:
    """One passage per line; a bad line is an error naming the file, the line and the field."""
    path = Path(path).expanduser()
    passages = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}: line {n}: not a JSON object ({err})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {n}: not a JSON object")
            pid = record.get("id", record.get("description_id"))
            text = record.get("text", record.get("description"))
            if pid in (None, ""):
                raise ValueError(f"{path}: line {n}: field 'id' is missing or empty")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}: line {n} (id {pid!r}): field 'text' is missing or empty")
            passages.append(Passage(str(pid), text))
    if not passages:
        raise ValueError(f"{path}: no passages")
    return passages


def passages_from_adaculturesafe(culturesafe_data: str | None = None, **loader_args: Any) -> list[Passage]:
    """Every description of the dataset (knowledge and safety configs), through the one loader."""
    from culturesafe_ext.data.loader import load_adaculturesafe

    rows: list[Mapping[str, Any]] = []
    for config in ("knowledge", "safety"):
        data = load_adaculturesafe(culturesafe_config=config, culturesafe_data=culturesafe_data, **loader_args)
        for split in data.values():
            rows.extend(split.select_columns(["description_id", "description"]))
    return passages_from_docs(rows)


def load_passages(source: str, docs: Sequence[Mapping[str, Any]] = (), **loader_args: Any) -> list[Passage]:
    """The passages of a named source (see the module docstring)."""
    if source == DOCS:
        passages = passages_from_docs(docs)
        if not passages:
            raise ValueError(
                "knowledge_source=docs: the evaluated documents carry no 'description'/'description_id'; "
                "name a JSONL file of passages with knowledge_source=PATH"
            )
        return passages
    if source == ADACULTURESAFE:
        return passages_from_adaculturesafe(**loader_args)
    if Path(source).expanduser().is_file():
        return passages_from_jsonl(source)
    raise ValueError(f"knowledge_source={source!r}: not 'docs', 'adaculturesafe' nor an existing JSONL file")


class BM25Index:
    """A BM25 index over passages (English stop words removed), searched many queries at a time."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        import bm25s

        if not passages:
            raise ValueError("cannot index an empty knowledge source")
        self.passages = list(passages)
        self._bm25s = bm25s
        self._retriever = bm25s.BM25()
        self._retriever.index(
            bm25s.tokenize([p.text for p in self.passages], stopwords="en", show_progress=False), show_progress=False
        )

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """The top-``k`` passages per query, best first (fewer when the source is smaller)."""
        if not queries:
            return []
        k = max(1, min(k, len(self.passages)))
        tokens = self._bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
        indices, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        out = []
        for row_idx, row_scores in zip(indices, scores, strict=True):
            out.append(
                [
                    Hit(self.passages[i].id, self.passages[i].text, float(s), rank)
                    for rank, (i, s) in enumerate(zip(row_idx.tolist(), row_scores.tolist(), strict=True), start=1)
                ]
            )
        return out


@dataclass
class Recall:
    """Recall@k of the gold description: hits / requests that have a gold id."""

    k: int
    hits: int = 0
    n: int = 0

    def add(self, gold: str | None, hits: Sequence[Hit]) -> bool | None:
        if not gold:
            return None
        found = any(h.id == gold for h in hits)
        self.n += 1
        self.hits += int(found)
        return found

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "recall": self.value, "hits": self.hits, "n_with_gold": self.n}
