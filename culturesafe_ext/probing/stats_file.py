"""A probe stats file read back as numpy arrays (what ``probe compare`` and the report need; no torch).

:class:`culturesafe_ext.probing.stats.TaskStats` writes these files while lm_eval runs ``--model hf-probe``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "culturesafe-probe-stats/1"


@dataclass
class StatsFile:
    """What a stats file holds, as numpy arrays; several files of one group add up exactly."""

    act_sum: np.ndarray
    topk_count: np.ndarray
    tokens: np.ndarray
    meta: dict[str, Any]
    sources: list[str]

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.sum())

    def mean(self) -> np.ndarray:
        """Mean activation per neuron over all recorded tokens: [layers, width]."""
        return self.act_sum.sum(axis=1) / max(self.n_tokens, 1)

    def topk_rate(self) -> np.ndarray:
        """Share of recorded tokens for which each neuron was in its layer's top-k: [layers, width]."""
        return self.topk_count.sum(axis=1) / max(self.n_tokens, 1)


def load_stats(path: Path) -> StatsFile:
    """Read one ``<task>.npz`` written by :meth:`TaskStats.save`."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a culturesafe probe stats file (format {meta.get('format')!r})")
        return StatsFile(data["act_sum"], data["topk_count"], data["tokens"], meta, [str(path)])


def merge(files: list[StatsFile]) -> StatsFile:
    """One group from several stats files (tasks, countries, ranks): buckets side by side, sums kept."""
    first = files[0]
    for other in files[1:]:
        for key in ("layers", "width", "k"):
            if other.meta.get(key) != first.meta.get(key):
                raise ValueError(
                    f"cannot pool {other.sources[0]} with {first.sources[0]}: their {key!r} differ "
                    f"({other.meta.get(key)!r} vs {first.meta.get(key)!r})"
                )
    meta = {
        **first.meta,
        "task": [f.meta.get("task") for f in files],
        "n_docs": sum(f.meta.get("n_docs", 0) for f in files),
        "n_tokens": sum(f.n_tokens for f in files),
    }
    return StatsFile(
        act_sum=np.concatenate([f.act_sum for f in files], axis=1),
        topk_count=np.concatenate([f.topk_count for f in files], axis=1),
        tokens=np.concatenate([f.tokens for f in files]),
        meta=meta,
        sources=[s for f in files for s in f.sources],
    )
