"""Running per-neuron statistics of one task, and their files: never raw activations.

State per task is O(buckets x layers x neurons) whatever the number of documents: the sum of each
neuron's activation and how often it is in its layer's per-token top-k, split into a few buckets.
A document's bucket is a stable hash of its prompt tokens, so the buckets are random groups of documents:
``culturesafe probe compare`` permutes them for its permutation test. Sums are float64 over activations
first rounded to a 2^-24 grid, which makes every partial sum exact (while |sum| < 2^29): the statistics
are identical whatever the batching and summation order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

GRID = 2.0**24
FORMAT = "culturesafe-probe-stats/1"


def bucket_of(tokens: list[int], n_buckets: int) -> int:
    """Stable bucket of a document from its prompt token ids (same in every process and batch)."""
    digest = hashlib.blake2b(np.asarray(tokens, dtype=np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_buckets


@dataclass
class TaskStats:
    """Accumulators of one task: ``act_sum`` and ``topk_count`` are [layers, buckets, width]."""

    n_layers: int
    width: int
    k: int
    n_buckets: int
    device: torch.device | str = "cpu"
    n_docs: int = 0
    act_sum: torch.Tensor = field(init=False)
    topk_count: torch.Tensor = field(init=False)
    tokens: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        shape = (self.n_layers, self.n_buckets, self.width)
        self.act_sum = torch.zeros(shape, dtype=torch.float64, device=self.device)
        self.topk_count = torch.zeros(shape, dtype=torch.int64, device=self.device)
        self.tokens = torch.zeros(self.n_buckets, dtype=torch.int64, device=self.device)

    def add_tokens(self, buckets: torch.Tensor) -> None:
        """Count the recorded tokens once per forward pass; ``buckets`` holds one bucket id per token."""
        self.tokens += torch.bincount(buckets.to(self.device), minlength=self.n_buckets)

    def add(self, layer: int, acts: torch.Tensor, buckets: torch.Tensor) -> None:
        """Fold one layer's activations of the recorded tokens ([n_tokens, width]) into the sums."""
        if acts.shape[0] == 0:
            return
        acts = acts.to(self.device)
        buckets = buckets.to(self.device)
        exact = acts.to(torch.float64, copy=True).mul_(GRID).round_().div_(GRID)  # one copy, then in place
        # scatter_add_, not index_add_: the latter stalls (tens of ms per call) on a busy 2-core CPU
        self.act_sum[layer].scatter_add_(0, buckets[:, None].expand_as(exact), exact)
        top = acts.topk(min(self.k, self.width), dim=-1).indices
        flat = (buckets[:, None] * self.width + top).flatten()
        counts = torch.bincount(flat, minlength=self.n_buckets * self.width)
        self.topk_count[layer] += counts.view(self.n_buckets, self.width)

    def nbytes(self) -> int:
        """Bytes held by the accumulators (the memory test's measure)."""
        return sum(t.numel() * t.element_size() for t in (self.act_sum, self.topk_count, self.tokens))

    def save(self, folder: Path, task: str, meta: dict[str, Any]) -> Path:
        """Write ``<task>.npz`` (arrays + meta) and ``<task>.json`` (the same meta, for people)."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            **meta,
            "format": FORMAT,
            "task": task,
            "n_tokens": int(self.tokens.sum()),
            "n_docs": self.n_docs,
            "k": self.k,
            "width": self.width,
            "buckets": self.n_buckets,
        }
        path = folder / f"{task}.npz"
        tmp = folder / f".{task}.tmp.npz"
        np.savez_compressed(
            tmp,
            act_sum=self.act_sum.cpu().numpy(),
            topk_count=self.topk_count.cpu().numpy(),
            tokens=self.tokens.cpu().numpy(),
            meta=np.array(json.dumps(meta)),
        )
        tmp.replace(path)
        (folder / f"{task}.json").write_text(json.dumps(meta, indent=2) + "\n")
        return path


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
