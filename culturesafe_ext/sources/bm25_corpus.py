"""Offline search over a local corpus (JSONL or parquet: ``id``, ``title``, ``text``, optional ``url``) with bm25s.

Why: a run without any network (tests, air-gapped machines, a fixed slice of ``wikimedia/wikipedia`` for
reproducible synthesis). The index is built once and saved with bm25s under ``<index_dir>/<corpus sha256>``,
so a changed corpus gets a new index and an unchanged one is loaded, never rebuilt. A bad record is a one-line
:class:`CorpusError` naming the file, the line (JSONL) or record (parquet) and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from culturesafe_ext.sources.base import SearchRefused
from culturesafe_ext.sources.passage import SearchHit, utc_now

REQUIRED = ("id", "title", "text")
STOPWORDS = "en"


class CorpusError(SearchRefused):
    """The corpus cannot be used; the message names file, line/record and field."""


@dataclass(frozen=True)
class CorpusRecord:
    id: str
    title: str
    text: str
    url: str | None


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_corpus(path: Path) -> list[CorpusRecord]:
    """Every record, checked: a missing or non-string field, an empty text, a repeated id is a CorpusError."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such corpus file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = _jsonl_rows(path)
        where = "line"
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = enumerate(pq.read_table(path).to_pylist(), start=1)
        except Exception as err:  # pyarrow raises many kinds for a broken file
            raise CorpusError(f"{path}: not a readable parquet file ({type(err).__name__}: {err})") from None
        where = "record"
    else:
        raise CorpusError(f"{path}: a corpus is a .jsonl or .parquet file, not {suffix or 'a file without suffix'}")
    records, seen = [], {}
    for number, row in rows:
        record = _record(row, f"{path}, {where} {number}")
        if record.id in seen:
            raise CorpusError(f"{path}, {where} {number}, field 'id': {record.id!r} repeats {where} {seen[record.id]}")
        seen[record.id] = number
        records.append(record)
    if not records:
        raise CorpusError(f"{path}: the corpus has no records")
    return records


def _jsonl_rows(path: Path):
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as err:
                raise CorpusError(f"{path}, line {number}: not JSON ({err})") from None


def _record(row: object, where: str) -> CorpusRecord:
    if not isinstance(row, dict):
        raise CorpusError(f"{where}: a record is an object with fields {list(REQUIRED)}, not {type(row).__name__}")
    for field in REQUIRED:
        value = row.get(field)
        if field == "id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise CorpusError(f"{where}, field {field!r}: {'missing' if value is None else 'not a string'}")
        if field != "title" and not value.strip():
            raise CorpusError(f"{where}, field {field!r}: empty")
    url = row.get("url")
    if url is not None and not isinstance(url, str):
        raise CorpusError(f"{where}, field 'url': not a string")
    return CorpusRecord(id=str(row["id"]), title=row["title"], text=row["text"], url=url or None)


class Bm25Search:
    """``bm25:PATH``: the corpus is read and checked at construction; its index is loaded or built then."""

    name = "bm25"
    fetches_pages = False

    def __init__(self, path: str | Path, index_dir: Path) -> None:
        import bm25s

        self.path = Path(path)
        self.records = read_corpus(self.path)
        self.sha256 = file_hash(self.path)
        self.index_path = Path(index_dir) / self.sha256
        self.built = False
        if (self.index_path / "params.index.json").is_file():
            self.retriever = bm25s.BM25.load(str(self.index_path), show_progress=False)
        else:
            self.retriever = bm25s.BM25()
            texts = [f"{r.title}\n{r.text}" for r in self.records]
            tokens = bm25s.tokenize(texts, stopwords=STOPWORDS, show_progress=False)
            self.retriever.index(tokens, show_progress=False)
            self._save()
            self.built = True

    def _save(self) -> None:
        """Save into a fresh folder and rename it into place, so a killed build leaves no half index."""
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".building-", dir=self.index_path.parent)
        self.retriever.save(tmp, show_progress=False)
        try:
            os.replace(tmp, self.index_path)
        except OSError:  # another process saved the same index first
            shutil.rmtree(tmp, ignore_errors=True)

    @property
    def identity(self) -> str:
        return f"{self.path.name} sha256={self.sha256}"

    @property
    def requests(self) -> int:
        return 0

    async def search(self, query: str, k: int) -> list[SearchHit]:
        import bm25s

        tokens = bm25s.tokenize([query], stopwords=STOPWORDS, show_progress=False)
        if not tokens.vocab:
            return []
        k = min(k, len(self.records))
        docs, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        now, hits = utc_now(), []
        for index, score in zip(docs[0].tolist(), scores[0].tolist(), strict=True):
            if score <= 0:
                continue  # shares no term with the query
            record = self.records[index]
            hits.append(
                SearchHit(
                    backend=self.name,
                    query=query,
                    rank=len(hits) + 1,
                    title=record.title,
                    url=record.url,
                    corpus_id=record.id,
                    snippet=record.text[:300],
                    score=float(score),
                    text=record.text,
                    retrieved_at=now,
                )
            )
        return hits

    async def aclose(self) -> None:
        pass
