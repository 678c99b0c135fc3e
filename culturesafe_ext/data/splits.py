"""Train / held-out split by description, and the guard that keeps trained-on items out of evaluation.

Every training command (grounded DPO, per-culture adapters, the router) splits the *descriptions* of
a dataset, never its items, so no item of an evaluated description was seen in training. It writes a
:data:`TRAINING_MANIFEST` beside what it saves; the loader reads the manifest of any model argument
that points at such a folder (``peft=``, ``adapters=``, ``router=``) and refuses to evaluate a
description listed in it. ``--metadata '{"culturesafe_split": "split.json"}'`` restricts the tasks to
the held-out descriptions of a saved split.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from culturesafe_ext.data import textio

TRAINING_MANIFEST = "culturesafe_training.json"
DATASET_SPLIT_SEED = 42  # the CulturaX train/validation/test split, in both `culturesafe build` and `generate`
SPLIT_VERSION = 1
# Model arguments that may name a folder written by a culturesafe training command.
TRAINED_ARTIFACT_ARGS = ("peft", "adapters", "router")


@dataclass
class DescriptionSplit:
    """Description ids for training and for evaluation, with how they were drawn."""

    train: list[str]
    heldout: list[str]
    seed: int
    heldout_fraction: float
    source: str = ""
    version: int = SPLIT_VERSION
    by_country: dict[str, dict[str, int]] = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DescriptionSplit:
        path = Path(path)
        try:
            raw = textio.load_json(path)
            if not isinstance(raw, dict):
                raise ValueError("the top level is not an object")
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable culturesafe split file ({err})") from err
        missing = [k for k in ("train", "heldout", "seed", "heldout_fraction") if k not in raw]
        if missing:
            raise ValueError(f"{path}: split file lacks the field(s) {', '.join(missing)}")
        return cls(**{k: raw[k] for k in raw if k in cls.__dataclass_fields__})


def split_descriptions(
    rows: Iterable[Mapping[str, Any]], heldout_fraction: float = 0.5, seed: int = 0, source: str = ""
) -> DescriptionSplit:
    """Seeded split of the descriptions behind ``rows``, stratified by country.

    Each country with at least two descriptions keeps at least one on each side.
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be strictly between 0 and 1, got {heldout_fraction}")
    per_country: dict[str, set[str]] = defaultdict(set)
    for n, row in enumerate(rows):
        for key in ("description_id", "country"):
            if not row.get(key):
                raise ValueError(f"row {n} has no {key!r}: cannot split by description")
        per_country[row["country"]].add(row["description_id"])
    rng = random.Random(seed)
    train: list[str] = []
    heldout: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for country in sorted(per_country):
        ids = sorted(per_country[country])
        rng.shuffle(ids)
        k = math.ceil(len(ids) * heldout_fraction)
        if len(ids) >= 2:
            k = min(max(k, 1), len(ids) - 1)
        heldout += ids[:k]
        train += ids[k:]
        counts[country] = {"train": len(ids) - k, "heldout": k}
    return DescriptionSplit(sorted(train), sorted(heldout), seed, heldout_fraction, source, by_country=counts)


def write_training_manifest(folder: Path, split: DescriptionSplit, trained_on: Iterable[str], **info: Any) -> Path:
    """Record, beside a saved adapter or router, the descriptions it was trained on and how."""
    trained = sorted(set(trained_on))
    leaked = sorted(set(trained) & set(split.heldout))
    if leaked:
        raise ValueError(f"refusing to record training on held-out descriptions: {', '.join(leaked[:5])}")
    path = Path(folder) / TRAINING_MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"trained_descriptions": trained, "split": asdict(split), **info}
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def trained_descriptions(model_args: Mapping[str, Any]) -> dict[str, set[str]]:
    """Manifest path -> trained description ids, for every model argument naming a trained folder."""
    found: dict[str, set[str]] = {}
    for name in TRAINED_ARTIFACT_ARGS:
        value = model_args.get(name)
        if not isinstance(value, str) or not value:
            continue
        for part in value.split("|"):  # several adapters may be given as a|b|c
            manifest = Path(part).expanduser() / TRAINING_MANIFEST
            if manifest.is_file():
                raw = textio.load_json(manifest)
                found[str(manifest)] = set(raw.get("trained_descriptions", []))
            for nested in sorted(Path(part).expanduser().glob(f"*/{TRAINING_MANIFEST}")):
                raw = textio.load_json(nested)
                found[str(nested)] = set(raw.get("trained_descriptions", []))
    return found


def restrict_to(dataset: Any, description_ids: set[str]) -> Any:
    """Keep only the rows of the given descriptions (a ``DatasetDict`` or a ``Dataset``)."""
    return dataset.filter(lambda row: row["description_id"] in description_ids)


def refuse_overlap(dataset: Any, trained: Mapping[str, set[str]], where: str) -> None:
    """Raise when any evaluated description was trained on (the message names both files)."""
    splits = dataset.values() if hasattr(dataset, "values") else [dataset]
    evaluated = {d for split in splits for d in split["description_id"]}
    for manifest, ids in trained.items():
        overlap = sorted(evaluated & ids)
        if overlap:
            raise ValueError(
                f"{where}: {len(overlap)} evaluated description(s) were used to train the model "
                f"({manifest}), e.g. {', '.join(overlap[:3])}. Evaluate on the held-out part with "
                '--metadata \'{"culturesafe_split": "<the split.json saved with it>"}\'.'
            )
