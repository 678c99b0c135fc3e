"""A dataset's content fingerprint: which documents a config's split holds, whatever its name or revision says.

Each document is hashed as canonical JSON (sorted keys, no spaces, UTF-8), the hashes sorted and hashed
again: the same documents give the same fingerprint in any order and from any copy (parquet, Hub, bundled),
and a copy with one document changed, dropped or added gives another. ``culturesafe build`` publishes the
fingerprint of every config and split in the dataset card (YAML key :data:`CARD_KEY`), and
``culturesafe leaderboard validate`` compares the data a run names against the card of the released dataset.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CARD_KEY = "culturesafe_fingerprints"  # {config: {split: {"sha256": ..., "num_examples": n}}}


def doc_digest(doc: Mapping[str, Any]) -> str:
    """sha256 of one document as canonical JSON."""
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The fingerprint of a split: sha256 over its documents' sorted digests, and how many there are."""
    digests = sorted(doc_digest(doc) for doc in docs)
    return {"sha256": hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest(), "num_examples": len(digests)}


def of_dataset(splits: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """split -> fingerprint of a loaded config (a ``DatasetDict``, or any mapping of row iterables)."""
    return {split: fingerprint(rows) for split, rows in splits.items()}


def published(card: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """config -> split -> fingerprint, as a dataset card (``README.md``) publishes them (empty when it does not)."""
    from huggingface_hub import DatasetCard

    value = DatasetCard.load(card).data.to_dict().get(CARD_KEY) or {}
    return value if isinstance(value, dict) else {}
