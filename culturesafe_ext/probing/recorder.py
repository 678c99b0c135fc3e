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
    mask: torch.Tensor  # [batch, seq] bool
    token_buckets: torch.Tensor  # [n_masked_tokens]


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
            mask = mask.bool()
            if bool(mask.any()):
                buckets = row_buckets.to(mask.device)[:, None].expand(mask.shape)[mask]
                self._targets.append(_Target(stats, mask, buckets))
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
            if acts.shape[:2] != self._targets[0].mask.shape:
                return  # a forward pass we were not asked about (e.g. a decoding step)
            with torch.no_grad():
                for target in self._targets:
                    if layer == 0:
                        target.stats.add_tokens(target.token_buckets)
                    selected = acts[target.mask.to(acts.device)].float()
                    target.stats.add(layer, selected, target.token_buckets)
            if layer == last and self._once:
                self._targets = []

        return hook
