"""The route of a request, written into the request itself: logged in the samples and part of the cache key.

lm-eval 0.4.13 logs ``Instance.args`` of every request in the samples file (``arguments``) and keys
``--use_cache`` by ``hash_args(method, Instance.args)`` — the doc is not in the key, so two routes of
the same prompt would share one cached answer. A routing model therefore appends one small dict,
``{"culturesafe_route": <adapter or "__base__">, "adapters": <fingerprint>}``, to each request's
arguments before anything reads them. Only what decides the output is in it (which adapter, which
adapter weights), so an oracle run and a learned run share the cache for requests routed alike.

``CachingLM`` hashes the arguments *before* it calls the model, so :func:`install_cache_patch` makes
its request methods first call the wrapped model's ``culturesafe_tag_requests`` (a model without that
method is untouched). The same patch runs a wrapper's request method with no requests on a data-parallel
rank whose requests were all cached, so that rank reaches the wrapper's gathers too (see
:func:`culturesafe_ext.lm_eval_internals.patch_caching_lm` and :mod:`culturesafe_ext.models.ranks`).
:class:`RoutedCacheHook` keys HFLM's per-answer ``add_partial`` writes the same way, so a killed run
resumes with the right routes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from culturesafe_ext.data.manifests import ROUTE_KEY

log = logging.getLogger("culturesafe")

BASE = "__base__"  # peft's adapter name for "no adapter" in a mixed batch
TAG_METHOD = "culturesafe_tag_requests"
REQUEST_METHODS = ("loglikelihood", "loglikelihood_rolling", "generate_until")


def make_tag(route: str, adapters_fingerprint: str) -> dict[str, str]:
    """The dict appended to a request's arguments (key order is fixed: it is hashed as JSON)."""
    if route == BASE:
        return {ROUTE_KEY: BASE}
    return {ROUTE_KEY: route, "adapters": adapters_fingerprint}


def tag_of(args: tuple) -> dict | None:
    """The route tag of a request's arguments, or None when it has none yet."""
    last = args[-1] if args else None
    return last if isinstance(last, dict) and ROUTE_KEY in last else None


def untagged(args: tuple) -> tuple:
    return args[:-1] if tag_of(args) is not None else args


class RoutedCacheHook:
    """Wraps lm-eval's ``CacheHook``: HFLM's partial writes get the route tag the cache key needs."""

    def __init__(self, inner: Any, tag_for: Callable[[str, tuple], dict | None]) -> None:
        self.inner = inner
        self.dbdict = getattr(inner, "dbdict", None)
        self._tag_for = tag_for

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        if self.dbdict is None or req is None:
            return
        tag = self._tag_for(attr, tuple(req))
        if tag is not None:  # a request we cannot tie to a route is left to CachingLM's own write
            self.inner.add_partial(attr, (*req, tag), res)


_PATCHED = False


def cache_patch_installed() -> bool:
    return _PATCHED


def install_cache_patch() -> bool:
    """Make ``lm_eval.api.model.CachingLM`` tag requests (via the wrapped LM) before hashing them, and run a
    collective request method of the wrapped LM on a data-parallel rank whose requests were all cached."""
    global _PATCHED
    if not _PATCHED:
        from culturesafe_ext.lm_eval_internals import patch_caching_lm

        _PATCHED = patch_caching_lm(TAG_METHOD, REQUEST_METHODS)
    return _PATCHED
