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

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_eval.models.huggingface import HFLM

from culturesafe_ext.data.adaculturesafe_schema import slug
from culturesafe_ext.models import ranks
from culturesafe_ext.routing import route_tags
from culturesafe_ext.routing.classifier import ROUTER_FILE, CultureRouter, file_fingerprint, hf_forward, mean_pooled
from culturesafe_ext.routing.route_tags import BASE

log = logging.getLogger("culturesafe")

ADAPTER_CONFIG = "adapter_config.json"
MODES = ("learned", "oracle", "fixed", "none")
MISSING_POLICIES = ("error", "base")

route_tags.install_cache_patch()


@dataclasses.dataclass(frozen=True)
class Routing:
    mode: str
    culture: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Routing:
        mode, _, culture = str(spec).strip().partition(":")
        if mode not in MODES or (mode == "fixed") != bool(culture):
            raise ValueError(
                f"routing={spec!r}: expected one of learned, oracle, fixed:<culture>, none (e.g. routing=fixed:china)"
            )
        return cls(mode, slug(culture) if culture else None)

    def __str__(self) -> str:
        return f"fixed:{self.culture}" if self.culture else self.mode


def discover_adapters(folder: str | Path) -> dict[str, Path]:
    """Culture slug -> adapter folder, for every ``DIR/<slug>/adapter_config.json``."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"adapters={folder}: no such folder (write one with `culturesafe train adapters`)")
    found = {p.parent.name: p.parent for p in sorted(root.glob(f"*/{ADAPTER_CONFIG}"))}
    if not found:
        raise FileNotFoundError(f"adapters={folder}: no <culture>/{ADAPTER_CONFIG} inside")
    return found


def _trained_prompt_format(folder: Path) -> str | None:
    """The prompt format ``culturesafe train adapters`` recorded for this folder (older runs: raw)."""
    from culturesafe_ext.data.manifests import ADAPTERS_SUMMARY_FILE as SUMMARY_FILE

    path = folder.expanduser() / SUMMARY_FILE
    if not path.is_file():
        return None  # adapters made elsewhere: not recorded
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("prompt_format", "raw"))
    except ValueError as err:
        raise ValueError(f"{path}: not readable JSON ({err})") from err


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
        if missing_adapter not in MISSING_POLICIES:
            raise ValueError(f"missing_adapter={missing_adapter!r}: expected one of {', '.join(MISSING_POLICIES)}")
        self.missing_adapter = missing_adapter
        self.routing = Routing.parse(routing)
        self.adapter_dirs = discover_adapters(adapters)
        if self.routing.mode == "fixed" and self.routing.culture not in self.adapter_dirs:
            raise ValueError(
                f"routing={routing}: no adapter {self.routing.culture!r} in {adapters} "
                f"(it has: {', '.join(self.adapter_dirs)})"
            )
        if self.routing.mode == "learned" and not router:
            raise ValueError("routing=learned needs router=DIR (a folder written by `culturesafe train router`)")
        super().__init__(pretrained=pretrained, **kwargs)
        if self.backend != "causal":
            raise ValueError(f"hf-router supports decoder-only (causal) models; {pretrained} is {self.backend}")
        self._load_adapters()
        self.router = CultureRouter.load(router) if self.routing.mode == "learned" else None
        if self.router is not None:
            self._check_router_classes(router)
        self.router_batch_size = int(router_batch_size)
        files = [f for d in self.adapter_dirs.values() for f in sorted(d.glob("adapter_*")) if f.is_file()]
        self.adapters_fingerprint = file_fingerprint(files)
        self.router_fingerprint = file_fingerprint([Path(router) / ROUTER_FILE]) if self.router else None
        self._learned: dict[str, str] = {}  # prompt -> route, so each prompt is classified once
        self._active_route: str | None = None  # the route of the group being evaluated (for the cache hook)
        self.route_counts: Counter[str] = Counter()
        self.fallback_counts: Counter[str] = Counter()  # culture without an adapter -> requests run on the base
        # the same, summed over data-parallel ranks after each request call (what the model info reports)
        self.total_route_counts: Counter[str] = Counter()
        self.total_fallback_counts: Counter[str] = Counter()
        self.prompt_format = "raw"  # "chat" once lm-eval renders a request through apply_chat_template
        self.adapters_prompt_format = _trained_prompt_format(Path(adapters))
        self._format_checked = False

    # --- loading -------------------------------------------------------------------------------------
    def _load_adapters(self) -> None:
        from peft import PeftModel

        names = list(self.adapter_dirs)
        model = PeftModel.from_pretrained(self._model, str(self.adapter_dirs[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(self.adapter_dirs[name]), adapter_name=name)
        model.eval()
        self._model = model
        log.info("hf-router: %d adapters loaded (%s); routing=%s", len(names), ", ".join(names), self.routing)

    def _check_router_classes(self, router: str | None) -> None:
        """Compare the router's classes with the adapters at load: a class without an adapter is refused
        (``missing_adapter=error``) or announced (``base``); an adapter the router never picks is announced."""
        assert self.router is not None
        missing = sorted(set(self.router.classes) - set(self.adapter_dirs))
        unused = sorted(set(self.adapter_dirs) - set(self.router.classes))
        if missing and self.missing_adapter == "error":
            raise ValueError(
                f"hf-router: the router in {router} can route to {', '.join(missing)}, but adapters= has no adapter "
                f"for {'it' if len(missing) == 1 else 'them'} (it has: {', '.join(self.adapter_dirs)}). Train the "
                "missing adapters (`culturesafe train adapters`), train the router on the adapters' cultures, or "
                "pass missing_adapter=base to run those requests on the base model (counted as fallback_counts)."
            )
        if missing:
            log.warning(
                "hf-router: the router can route to %s, which have no adapter: those requests run on the base "
                "model (missing_adapter=base) and are counted in fallback_counts",
                ", ".join(missing),
            )
        if unused:
            log.warning("hf-router: the router never routes to the adapter(s) %s", ", ".join(unused))

    def _fallback(self, culture: str, where: str) -> str:
        """The route of a request whose culture has no adapter: refused, or the base model, counted."""
        if self.missing_adapter == "error":
            raise ValueError(
                f"hf-router: {where} routes to {culture!r}, which has no adapter in adapters= (it has: "
                f"{', '.join(self.adapter_dirs)}); pass missing_adapter=base to run such requests on the base model"
            )
        self.fallback_counts[culture] += 1
        return BASE

    # --- prompt format ------------------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        self.prompt_format = "chat"
        return super().apply_chat_template(chat_history, add_generation_prompt)

    def trained_prompt_formats(self) -> dict[str, str | None]:
        """The prompt format the parts this routing mode uses were trained on (None: not recorded)."""
        out: dict[str, str | None] = {}
        if self.routing.mode != "none":
            out["adapters"] = self.adapters_prompt_format
        if self.router is not None:
            out["router"] = str(self.router.info.get("prompt_format", "raw"))
        return out

    def _check_prompt_format(self) -> None:
        """Warn once when the requests' format differs from what adapters or router were trained on."""
        if self._format_checked:
            return
        self._format_checked = True
        for part, trained in self.trained_prompt_formats().items():
            if trained is not None and trained != self.prompt_format:
                log.warning(
                    "hf-router: the %s were trained on %s prompts but this run sends %s prompts%s; results are "
                    "valid but routing/adapters see a format they were not trained on. Retrain with "
                    "`culturesafe train %s --prompt-format %s` to match.",
                    "router's features" if part == "router" else part,
                    trained,
                    self.prompt_format,
                    " (--apply_chat_template)" if self.prompt_format == "chat" else "",
                    part,
                    self.prompt_format,
                )

    # --- deciding routes -----------------------------------------------------------------------------
    def culturesafe_tag_requests(self, requests: list) -> None:
        """Append the route tag to every request that has none (idempotent; called before caching)."""
        # one Instance can come several times (its ``repeats``, and lm-eval's data-parallel padding repeats a
        # rank's last request): tag and count each object once
        todo = list({id(r): r for r in requests if route_tags.tag_of(r.args) is None}.values())
        if not todo:
            return
        self._check_prompt_format()
        before = Counter(self.fallback_counts)
        for request, route in zip(todo, self._routes(todo), strict=True):
            request.arguments = (*request.args, route_tags.make_tag(route, self.adapters_fingerprint))
            self.route_counts[route] += 1
        fell_back = self.fallback_counts - before
        if fell_back:
            log.warning(
                "hf-router: %d request(s) routed to cultures without an adapter ran on the base model "
                "(missing_adapter=base): %s",
                sum(fell_back.values()),
                ", ".join(f"{c}: {n}" for c, n in sorted(fell_back.items())),
            )

    def _routes(self, requests: list) -> list[str]:
        mode = self.routing.mode
        if mode == "none":
            return [BASE] * len(requests)
        if mode == "fixed":
            return [self.routing.culture] * len(requests)
        if mode == "oracle":
            return [self._oracle(r) for r in requests]
        return self._learned_routes([r.args[0] for r in requests])

    def _oracle(self, request) -> str:
        country = (request.doc or {}).get("country") if isinstance(request.doc, dict) else None
        if not country:
            raise ValueError(
                f"routing=oracle: task {request.task_name} doc {request.doc_id} has no 'country' field to route by"
            )
        name = slug(country)
        if name not in self.adapter_dirs:
            return self._fallback(name, f"routing=oracle: task {request.task_name} doc {request.doc_id}")
        return name

    def _learned_routes(self, prompts: list[str]) -> list[str]:
        new = sorted({p for p in prompts if p not in self._learned})
        if new:
            max_length = int(self.router.info.get("max_length", 512))  # as in training
            with self.model.disable_adapter():  # the base model's features, as the router was trained on
                features = mean_pooled(
                    hf_forward(self.model), self.tokenizer, new, self.router_batch_size, max_length, self.device, True
                )
            for prompt, label in zip(new, self.router.predict(features), strict=True):
                self._learned[prompt] = label
        return [
            self._learned[p]
            if self._learned[p] in self.adapter_dirs
            else self._fallback(self._learned[p], "the router")
            for p in prompts
        ]

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
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(route_tags.tag_of(request.args)[route_tags.ROUTE_KEY], []).append(i)
        out: list[Any] = [None] * len(requests)
        for route, members in groups.items():
            stripped = [
                dataclasses.replace(requests[i], arguments=route_tags.untagged(requests[i].args)) for i in members
            ]
            with self._route_active(route):
                results = run(stripped)
            for i, result in zip(members, results, strict=True):
                out[i] = result
        self._sum_over_ranks()
        return out

    def _sum_over_ranks(self) -> None:
        """Route and fallback counts of the whole run (every rank's, summed; a collective, see :mod:`.ranks`).
        Only rank 0 writes the model info, so the totals are taken at the end of every request call."""
        self.total_route_counts = ranks.summed_counts(self, self.route_counts)
        self.total_fallback_counts = ranks.summed_counts(self, self.fallback_counts)

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
        one_process = ranks.world_size(self) == 1  # then the local counters are the totals, even between calls
        info.update(
            routing=str(self.routing),
            adapters=sorted(self.adapter_dirs),
            adapters_fingerprint=self.adapters_fingerprint,
            router_fingerprint=self.router_fingerprint,
            route_counts=dict(self.route_counts if one_process else self.total_route_counts),
            missing_adapter=self.missing_adapter,
            fallback_counts=dict(self.fallback_counts if one_process else self.total_fallback_counts),
            prompt_format=self.prompt_format,
            trained_prompt_formats=self.trained_prompt_formats(),
        )
        return info
