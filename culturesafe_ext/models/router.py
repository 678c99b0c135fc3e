"""``hf-router``: one base model, one LoRA adapter per culture, and a route for every request.

``lm_eval --model hf-router --model_args pretrained=BASE,adapters=DIR,router=DIR,routing=learned``

- ``adapters=DIR`` holds one peft adapter per culture in ``DIR/<culture slug>/`` (``culturesafe train
  adapters`` writes this); all are loaded once into one ``PeftModel``.
- ``routing=learned`` asks the router (``router=DIR``, ``culturesafe train router``) for each prompt;
  ``oracle`` takes the document's own ``country``; ``fixed:<culture>`` sends everything to one adapter;
  ``none`` runs the base model.
- lm-eval hands the model every request of a type at once: they are grouped by route and each group
  goes through HFLM's own batching with its adapter active (the base with adapters disabled), so each
  group runs at the speed of ``HFLM(peft=that adapter)``; results come back in request order.
- A culture without an adapter is never a silent fallback: ``missing_adapter=error`` (default) refuses
  at load when the router has classes the adapters lack, and refuses an oracle request for such a
  culture; ``missing_adapter=base`` runs those requests on the base model, warns, and counts them per
  culture (``fallback_counts`` in the results' model info), in every routing mode alike.
- The route of every request is appended to its arguments (see :mod:`.route_tags`), so it is in the
  samples file and in the ``--use_cache`` key.
- Adapters and router record the prompt format they were trained on (raw, or chat for
  ``--apply_chat_template``); a run that sends the other format gets a warning naming the retraining
  command, and the formats are in the results' model info.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lm_eval.models.huggingface import HFLM

from culturesafe_ext.models import ranks
from culturesafe_ext.routing import route_tags
from culturesafe_ext.routing.classifier import hf_forward, mean_pooled
from culturesafe_ext.routing.planner import RoutePlanner
from culturesafe_ext.routing.route_tags import BASE

log = logging.getLogger("culturesafe")

route_tags.install_cache_patch()


class HFRouterLM(HFLM):
    """HFLM with per-culture LoRA adapters chosen per request; see the module docstring."""

    def __init__(
        self,
        pretrained: str,
        adapters: str,
        routing: str = "learned",
        router: str | None = None,
        router_batch_size: int = 16,
        missing_adapter: str = "error",
        **kwargs: Any,
    ) -> None:
        if kwargs.get("peft"):
            raise ValueError("hf-router loads its adapters from adapters=DIR; do not pass peft=")
        self.routes = RoutePlanner("hf-router", adapters, routing, router, missing_adapter)
        super().__init__(pretrained=pretrained, **kwargs)
        if self.backend != "causal":
            raise ValueError(f"hf-router supports decoder-only (causal) models; {pretrained} is {self.backend}")
        self._load_adapters()
        self.router_batch_size = int(router_batch_size)
        self.adapters_fingerprint = self.routes.adapters_fingerprint
        self._active_route: str | None = None  # the route of the group being evaluated (for the cache hook)
        # route and fallback counts summed over data-parallel ranks after each request call (the model info)
        self.total_route_counts: Counter[str] = Counter()
        self.total_fallback_counts: Counter[str] = Counter()

    # --- loading -------------------------------------------------------------------------------------
    def _load_adapters(self) -> None:
        from peft import PeftModel

        dirs = self.routes.adapter_dirs
        names = list(dirs)
        model = PeftModel.from_pretrained(self._model, str(dirs[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(dirs[name]), adapter_name=name)
        model.eval()
        self._model = model
        log.info("hf-router: %d adapters loaded (%s); routing=%s", len(names), ", ".join(names), self.routes.routing)

    # --- prompt format ------------------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        self.routes.prompt_format = "chat"
        return super().apply_chat_template(chat_history, add_generation_prompt)

    def trained_prompt_formats(self) -> dict[str, str | None]:
        return self.routes.trained_prompt_formats()

    # --- deciding routes -----------------------------------------------------------------------------
    def culturesafe_tag_requests(self, requests: list) -> None:
        """Append the route tag to every request that has none (idempotent; called before caching)."""
        self.routes.tag(requests, self._router_features)

    def _router_features(self, prompts: list[str]):
        """The router's features: the base model's (adapters disabled), as the router was trained on."""
        max_length = int(self.routes.router.info.get("max_length", 512))  # as in training
        with self.model.disable_adapter():
            return mean_pooled(
                hf_forward(self.model), self.tokenizer, prompts, self.router_batch_size, max_length, self.device, True
            )

    # --- evaluation: one group per route, each through HFLM's own batching with its adapter active -----
    @contextmanager
    def _route_active(self, route: str) -> Iterator[None]:
        """The adapter of ``route`` active (or every adapter disabled for the base) inside the block."""
        self._active_route = route
        try:
            if route == BASE:
                with self.model.disable_adapter():
                    yield
            else:
                self.model.set_adapter(route, inference_mode=True)
                yield
        finally:
            self._active_route = None

    def _by_route(self, requests: list, run: Callable[[list], list]) -> list:
        """Tag, group by route (first-seen order), run each group with its adapter, results in request order."""
        self.culturesafe_tag_requests(requests)

        def run_group(route: str, group: list) -> list:
            with self._route_active(route):
                return run(group)

        out = self.routes.by_route(requests, run_group)
        self._sum_over_ranks()
        return out

    def _sum_over_ranks(self) -> None:
        """Route and fallback counts of the whole run (every rank's, summed; a collective, see :mod:`.ranks`).
        Only rank 0 writes the model info, so the totals are taken at the end of every request call."""
        self.total_route_counts = ranks.summed_counts(self, self.routes.route_counts)
        self.total_fallback_counts = ranks.summed_counts(self, self.routes.fallback_counts)

    @ranks.collective
    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._by_route(requests, lambda group: super(HFRouterLM, self).loglikelihood(group, disable_tqdm))

    @ranks.collective
    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        return self._by_route(requests, lambda group: super(HFRouterLM, self).generate_until(group, disable_tqdm))

    @ranks.collective
    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list[float]:
        return self._by_route(
            requests, lambda group: super(HFRouterLM, self).loglikelihood_rolling(group, disable_tqdm)
        )

    # --- cache and model info -----------------------------------------------------------------------
    def set_cache_hook(self, cache_hook) -> None:
        if getattr(cache_hook, "dbdict", None) is not None and not route_tags.cache_patch_installed():
            raise RuntimeError(
                "hf-router cannot key lm-eval's --use_cache by route on this lm-eval version; run without --use_cache"
            )
        super().set_cache_hook(route_tags.RoutedCacheHook(cache_hook, self._partial_tag))

    def _partial_tag(self, attr: str, req: tuple) -> dict | None:
        route = self._active_route
        return None if route is None else route_tags.make_tag(route, self.adapters_fingerprint)

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        if ranks.world_size(self) == 1:  # then the local counters are the totals, even between calls
            info.update(self.routes.model_info())
        else:
            info.update(self.routes.model_info(self.total_route_counts, self.total_fallback_counts))
        return info
