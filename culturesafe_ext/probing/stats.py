"""Running per-neuron statistics of one task, recorded with torch (read back by :mod:`.stats_file`).

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

from culturesafe_ext.probing.stats_file import FORMAT

GRID = 2.0**24


def bucket_of(tokens: list[int], n_buckets: int) -> int:
    """Stable bucket of a document from its prompt token ids (same in every process and batch)."""
    digest = hashlib.blake2b(np.asarray(tokens, dtype=np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_buckets


def row_stats(acts: torch.Tensor, weights: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row statistics of a padded batch ([rows, positions, width]) over the positions where ``weights``
    ([rows, positions], float32 0/1, on the activations' device) is 1: the sum of each neuron's activation
    (float64) and how often it is in the position's top-k (int64), both [rows, width].

    No boolean indexing (a host-device sync on a GPU) and no float64 copy of the activations: each value is
    rounded to the 2^-24 grid in float32 (exact: scaling by a power of two, then rounding to an integer) and
    summed over positions with float64 accumulation (exact: integers below 2^53), so the sums do not depend
    on batching or summation order. Computed once per layer and batch, whatever the number of tasks in it.
    """
    n_rows, width = acts.shape[0], acts.shape[-1]
    grid = acts.to(torch.float32, copy=True).mul_(GRID).round_().mul_(weights[..., None])
    row_sums = grid.sum(dim=1, dtype=torch.float64).div_(GRID)
    k = min(k, width)
    top = acts.topk(k, dim=-1).indices  # [rows, positions, k]
    flat = (torch.arange(n_rows, device=acts.device)[:, None, None] * width + top).flatten()
    counted = weights.to(torch.int64)[..., None].expand(-1, -1, k).flatten()
    row_counts = torch.zeros(n_rows * width, dtype=torch.int64, device=acts.device).scatter_add_(0, flat, counted)
    return row_sums, row_counts.view(n_rows, width)


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
        ones = torch.ones(acts.shape[0], 1, dtype=torch.float32, device=acts.device)
        self.add_rows(layer, acts[:, None, :], ones, buckets.to(acts.device))

    def add_row_tokens(
        self, weights: torch.Tensor, row_buckets: torch.Tensor, rows: torch.Tensor | None = None
    ) -> None:
        """:meth:`add_tokens` for a padded batch: ``weights`` [rows, positions] is 1 where a token counts;
        ``rows`` (0/1 per row, optional) selects the rows that belong to this task."""
        per_row = weights.sum(dim=1).to(torch.int64)
        if rows is not None:
            per_row = per_row * rows.to(torch.int64)
        self.tokens.scatter_add_(0, row_buckets.to(self.device), per_row.to(self.device))

    def add_rows(self, layer: int, acts: torch.Tensor, weights: torch.Tensor, row_buckets: torch.Tensor) -> None:
        """Fold a padded batch's activations ([rows, positions, width]) at the positions where ``weights``
        ([rows, positions], float32 0/1, on the activations' device) is 1; ``row_buckets`` [rows]."""
        self.add_row_stats(layer, *row_stats(acts, weights, self.k), row_buckets)

    def add_row_stats(
        self,
        layer: int,
        row_sums: torch.Tensor,
        row_counts: torch.Tensor,
        row_buckets: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> None:
        """Add per-row sums and top-k counts (from :func:`row_stats`) into the rows' buckets; ``rows`` (0/1 per
        row, optional) selects the rows that belong to this task. Exact: x * 1, x * 0 and the sums of grid
        values are exact in float64."""
        if rows is not None:
            row_sums = row_sums * rows.to(row_sums.dtype)[:, None]
            row_counts = row_counts * rows.to(row_counts.dtype)[:, None]
        index = row_buckets.to(self.device)[:, None].expand(-1, self.width)
        self.act_sum[layer].scatter_add_(0, index, row_sums.to(self.device))
        self.topk_count[layer].scatter_add_(0, index, row_counts.to(self.device))

    def copy(self) -> TaskStats:
        """An independent copy (to sum over data-parallel ranks without touching the running sums)."""
        out = TaskStats(self.n_layers, self.width, self.k, self.n_buckets, self.device, self.n_docs)
        out.act_sum, out.topk_count, out.tokens = self.act_sum.clone(), self.topk_count.clone(), self.tokens.clone()
        return out

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
        np.savez(  # not compressed: zlib over float64 sums cost seconds per task for a few MB saved
            tmp,
            act_sum=self.act_sum.cpu().numpy(),
            topk_count=self.topk_count.cpu().numpy(),
            tokens=self.tokens.cpu().numpy(),
            meta=np.array(json.dumps(meta)),
        )
        tmp.replace(path)
        (folder / f"{task}.json").write_text(json.dumps(meta, indent=2) + "\n")
        return path
