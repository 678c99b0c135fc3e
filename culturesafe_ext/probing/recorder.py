"""Forward pre-hooks on each layer's MLP down projection that fold the masked tokens into task stats.

The hooks do nothing until :meth:`ActivationRecorder.recording` arms them with one token mask per task
(which positions count for which task: never pads) and one bucket per row; the model wrapper decides
both, since only it knows where prompts, answers and pads are and which task each row belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from culturesafe_ext.probing.layout import MlpSite
from culturesafe_ext.probing.stats import TaskStats, row_stats


@dataclass
class _Target:
    stats: TaskStats
    rows: torch.Tensor  # [batch] 0/1: the rows whose positions (``weights``) count for this task


@dataclass
class _Batch:
    """What one armed recording folds in: the positions to record (the same span for every task of a
    row, as the model wrapper builds them), each row's bucket, and which rows go to which task."""

    weights: torch.Tensor  # [batch, seq] float32, 1 where a position is recorded
    row_buckets: torch.Tensor  # [batch] long
    targets: list[_Target]


class ActivationRecorder:
    """Owns the hooks; at most one armed recording at a time."""

    def __init__(self, sites: list[MlpSite]) -> None:
        self.sites = sites
        self._batches: list[_Batch] = []
        self._once = False
        self._handles = [site.module.register_forward_pre_hook(self._hook(i)) for i, site in enumerate(sites)]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextmanager
    def recording(
        self,
        targets: list[tuple[TaskStats, torch.Tensor]],
        row_buckets: torch.Tensor,
        once: bool = False,
        device: torch.device | str | None = None,
    ) -> Iterator[None]:
        """Record the forward passes run inside the block (only the first one when ``once``, e.g. the
        prefill of ``generate``): for each (stats, mask), the positions where the mask is true.

        Masks come on the host; each row's mask is the same span in every task that records the row, so
        the per-row statistics are computed once per layer and only attributed to tasks per row."""
        self._batches = []
        masks = [(stats, mask.bool().cpu()) for stats, mask in targets]
        masks = [(stats, mask) for stats, mask in masks if bool(mask.any())]
        if masks:
            union = torch.stack([mask for _, mask in masks]).any(dim=0)
            device = device if device is not None else targets[0][1].device
            shared = all(torch.equal(mask[mask.any(dim=1)], union[mask.any(dim=1)]) for _, mask in masks)
            groups = [masks] if shared else [[pair] for pair in masks]  # else: one pass per task (never seen)
            for group in groups:
                weights = (union if shared else group[0][1]).to(torch.float32)
                self._batches.append(
                    _Batch(
                        weights.to(device),
                        row_buckets.to(device),
                        [_Target(stats, mask.any(dim=1).to(device)) for stats, mask in group],
                    )
                )
        self._once = once
        try:
            yield
        finally:
            self._batches = []

    def _hook(self, layer: int):
        last = len(self.sites) - 1

        def hook(module: torch.nn.Module, args: tuple) -> None:
            if not self._batches or not args:
                return
            acts = args[0]
            if acts.shape[:2] != self._batches[0].weights.shape:
                return  # a forward pass we were not asked about (e.g. a decoding step)
            with torch.no_grad():  # no host-device sync in here: float weights, no boolean indexing
                for batch in self._batches:
                    sums, counts = row_stats(acts, batch.weights, batch.targets[0].stats.k)
                    for target in batch.targets:
                        if layer == 0:
                            target.stats.add_row_tokens(batch.weights, batch.row_buckets, target.rows)
                        target.stats.add_row_stats(layer, sums, counts, batch.row_buckets, target.rows)
            if layer == last and self._once:
                self._batches = []

        return hook
