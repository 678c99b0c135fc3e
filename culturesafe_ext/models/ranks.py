"""What the culturesafe wrappers share between data-parallel ranks (``accelerate launch -m lm_eval``).

lm-eval shards the documents over the ranks and gathers only samples and metrics; what a wrapper keeps
beside them (probe statistics, the retrieval index and recall, route counts) is per rank unless the wrapper
gathers it. Every helper here is a collective: all ranks must call it at the same point. lm-eval calls each
request method (``loglikelihood``, ``generate_until``, ...) once per request type on every rank, padded to
the same length, so the end of such a call is that point. One process: no communication at all.

With ``--use_cache`` lm-eval's ``CachingLM`` does not call the model on a rank whose requests are all cached;
the request methods are therefore marked :func:`collective`, and the patched ``CachingLM`` (see
:func:`culturesafe_ext.lm_eval_internals.patch_caching_lm`) then calls them with no requests: each wrapper must
accept an empty list and still take part in its collectives. :func:`check_cache` refuses ``--use_cache`` under
data parallelism when that patch cannot be installed (a hang otherwise).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any, TypeVar

import torch

from culturesafe_ext.lm_eval_internals import COLLECTIVE, REQUEST_CALLS

Method = TypeVar("Method", bound=Callable[..., Any])


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


def collective(method: Method) -> Method:
    """Mark a wrapper's request method as ending in a collective and count its calls (what the patched
    ``CachingLM`` reads to run it on a rank whose requests were all cached)."""

    @wraps(method)
    def counted(self: Any, requests: list, *args: Any, **kwargs: Any) -> Any:
        self.__dict__.setdefault(REQUEST_CALLS, Counter())[method.__name__] += 1
        return method(self, requests, *args, **kwargs)

    setattr(counted, COLLECTIVE, True)
    return counted  # type: ignore[return-value]


def check_cache(lm: Any, cache_hook: Any, model: str) -> None:
    """Refuse lm-eval's ``--use_cache`` (a cache hook with a database) under data parallelism when the
    ``CachingLM`` patch cannot be installed on this lm-eval: a fully cached rank would skip the gathers."""
    if getattr(cache_hook, "dbdict", None) is None or world_size(lm) == 1:
        return
    from culturesafe_ext.routing.route_tags import install_cache_patch

    if not install_cache_patch():
        raise RuntimeError(
            f"{model}: --use_cache under data parallelism needs lm-eval's CachingLM in the shape culturesafe "
            "patches (see culturesafe_ext/lm_eval_internals.py), and this lm-eval's differs: a rank whose "
            "requests are all cached would skip the gather the other ranks wait in. Run without --use_cache, "
            "or in one process."
        )
