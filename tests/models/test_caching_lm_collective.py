"""The patched ``CachingLM`` runs a collective wrapper method even on a rank whose requests are all cached
(in process, two fake ranks); the two-process runs are in tests/e2e/test_data_parallel_cache.py."""

from __future__ import annotations

from pathlib import Path

import pytest


# --------------------------------------------------------------------------------------------------
# The patched CachingLM itself, in one process: the real CachingLM and sqlite cache around a small LM whose
# request method is marked collective (what the wrappers' methods are), reporting two ranks.
# --------------------------------------------------------------------------------------------------
def _counting_lm(world: int):
    from lm_eval.api.model import LM

    from culturesafe_ext.models import ranks

    class Counting(LM):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[list[str]] = []

        @property
        def world_size(self) -> int:
            return world

        @ranks.collective
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            self.seen.append([r.args[0] for r in requests])
            return [(-1.0, True) for _ in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            self.seen.append([r.args[0] for r in requests])
            return [-1.0 for _ in requests]

        def generate_until(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

    return Counting()


def _requests(method: str, *contexts: str) -> list:
    from lm_eval.api.instance import Instance

    args = (lambda c: (c, " x")) if method == "loglikelihood" else (lambda c: (c,))
    return [Instance(method, {}, args(c), i) for i, c in enumerate(contexts)]


def test_caching_lm_runs_a_collective_method_on_a_rank_whose_requests_are_all_cached(tmp_path: Path) -> None:
    from lm_eval.api.model import CachingLM

    from culturesafe_ext.routing.route_tags import install_cache_patch

    assert install_cache_patch()
    lm = _counting_lm(world=2)
    cached = CachingLM(lm, str(tmp_path / "cache.db"))
    assert cached.loglikelihood(_requests("loglikelihood", "a", "b")) == [(-1.0, True)] * 2
    assert cached.loglikelihood(_requests("loglikelihood", "a", "b", "c")) == [(-1.0, True)] * 3
    assert cached.loglikelihood(_requests("loglikelihood", "b", "c")) == [(-1.0, True)] * 2  # all cached
    assert lm.seen == [["a", "b"], ["c"], []]  # the model ran once per call: the last one with no requests
    # a method not marked collective is left as lm-eval calls it (not at all when everything is cached)
    cached.loglikelihood_rolling(_requests("loglikelihood_rolling", "d"))
    cached.loglikelihood_rolling(_requests("loglikelihood_rolling", "d"))
    assert lm.seen[3:] == [["d"]]
    # one process: nothing waits for this rank, so lm-eval's own behaviour stands
    single = _counting_lm(world=1)
    one = CachingLM(single, str(tmp_path / "one.db"))
    one.loglikelihood(_requests("loglikelihood", "a"))
    one.loglikelihood(_requests("loglikelihood", "a"))
    assert single.seen == [["a"]]


def test_use_cache_under_data_parallelism_is_refused_when_caching_lm_has_another_shape(monkeypatch) -> None:
    """On an lm-eval whose CachingLM the patch does not know, a wrapper refuses --use_cache with two ranks
    (instead of hanging), and accepts it in one process."""
    from lm_eval.api import model as lm_model

    from culturesafe_ext.models import ranks
    from culturesafe_ext.routing import route_tags

    class OtherCachingLM:  # request methods defined on the class: no __getattr__ to patch
        def loglikelihood(self, requests):
            return []

    monkeypatch.setattr(lm_model, "CachingLM", OtherCachingLM)
    monkeypatch.setattr(route_tags, "_PATCHED", False)
    hook = lm_model.CacheHook(None)
    hook.dbdict = {}  # what CachingLM's hook carries: a cache database
    with pytest.raises(RuntimeError, match=r"hf-probe: --use_cache under data parallelism needs lm-eval's CachingLM"):
        ranks.check_cache(_counting_lm(world=2), hook, "hf-probe")
    ranks.check_cache(_counting_lm(world=1), hook, "hf-probe")
    ranks.check_cache(_counting_lm(world=2), lm_model.CacheHook(None), "hf-probe")  # no --use_cache
