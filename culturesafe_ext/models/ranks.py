"""What the culturesafe wrappers share between data-parallel ranks (``accelerate launch -m lm_eval``).

lm-eval shards the documents over the ranks and gathers only samples and metrics; what a wrapper keeps
beside them (probe statistics, the retrieval index and recall, route counts) is per rank unless the wrapper
gathers it. Every helper here is a collective: all ranks must call it at the same point. lm-eval calls each
request method (``loglikelihood``, ``generate_until``, ...) once per request type on every rank, padded to
the same length, so the end of such a call is that point. One process: no communication at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import torch


def world_size(lm: Any) -> int:
    """The number of data-parallel ranks of an HFLM (1 outside ``accelerate launch``)."""
    return int(getattr(lm, "world_size", 1) or 1)


def _distributed(lm: Any) -> bool:
    return world_size(lm) > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def all_objects(lm: Any, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` in one process)."""
    if not _distributed(lm):
        return [obj]
    out: list[Any] = [None] * world_size(lm)
    torch.distributed.all_gather_object(out, obj)
    return out


def summed_counts(lm: Any, counts: Mapping[str, int]) -> Counter[str]:
    """A counter summed over the ranks (every rank gets the total)."""
    total: Counter[str] = Counter()
    for part in all_objects(lm, dict(counts)):
        total.update(part)
    return total


def sum_tensors(lm: Any, tensors: Iterable[torch.Tensor]) -> None:
    """Sum each tensor over the ranks, in place (every rank gets the total)."""
    if not _distributed(lm):
        return
    for tensor in tensors:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
