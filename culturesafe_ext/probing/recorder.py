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
from culturesafe_ext.probing.stats import TaskStats


@dataclass
class _Target:
    stats: TaskStats
    weights: torch.Tensor  # [batch, seq] float32: 1 where the position counts for this task, else 0
    row_buckets: torch.Tensor  # [batch] long, on the same device


class ActivationRecorder:
    """Owns the hooks; at most one armed recording at a time."""

    def __init__(self, sites: list[MlpSite]) -> None:
        self.sites = sites
        self._targets: list[_Target] = []
        self._once = False
        self._handles = [site.module.register_forward_pre_hook(self._hook(i)) for i, site in enumerate(sites)]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextmanager
    def recording(
        self, targets: list[tuple[TaskStats, torch.Tensor]], row_buckets: torch.Tensor, once: bool = False
    ) -> Iterator[None]:
        """Record the forward passes run inside the block (only the first one when ``once``, e.g. the
        prefill of ``generate``): for each (stats, mask), the positions where the mask is true."""
        self._targets = []
        for stats, mask in targets:
            if mask.device.type == "cpu" and not bool(mask.any()):  # checked before the copy to the device
                continue
            weights = mask.to(torch.float32)
            self._targets.append(_Target(stats, weights, row_buckets.to(weights.device)))
        self._once = once
        try:
            yield
        finally:
            self._targets = []

    def _hook(self, layer: int):
        last = len(self.sites) - 1

        def hook(module: torch.nn.Module, args: tuple) -> None:
            if not self._targets or not args:
                return
            acts = args[0]
            if acts.shape[:2] != self._targets[0].weights.shape:
                return  # a forward pass we were not asked about (e.g. a decoding step)
            with torch.no_grad():  # no host-device sync in here: masks are float weights, no boolean indexing
                for target in self._targets:
                    if layer == 0:
                        target.stats.add_row_tokens(target.weights, target.row_buckets)
                    target.stats.add_rows(layer, acts, target.weights, target.row_buckets)
            if layer == last and self._once:
                self._targets = []

        return hook
