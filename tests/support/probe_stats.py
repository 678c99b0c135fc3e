"""Synthetic hf-probe statistics with a known set of most-activated neurons, for the probe tests."""

from __future__ import annotations

from pathlib import Path

import torch

from culturesafe_ext.probing.stats import TaskStats

WIDTH, K, LAYERS, BUCKETS = 100, 10, 3, 8


def write_stats(folder: Path, task: str, hot: range, seed: int, buckets: int = BUCKETS) -> Path:
    """Stats whose top-K neurons (every layer, every bucket) are ``hot``, plus noise below them."""
    stats = TaskStats(LAYERS, WIDTH, K, buckets)
    gen = torch.Generator().manual_seed(seed)
    for bucket in range(buckets):
        acts = torch.rand(20, WIDTH, generator=gen)
        acts[:, list(hot)] += 2.0
        ids = torch.full((20,), bucket)
        stats.add_tokens(ids)
        for layer in range(LAYERS):
            stats.add(layer, acts, ids)
    stats.n_docs = 40
    meta = {"model": "synthetic", "layers": [f"l{i}" for i in range(LAYERS)], "tokens": "prompt"}
    return stats.save(folder, task, meta)
