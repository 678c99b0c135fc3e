"""``hf-router``: one base model, one LoRA adapter per culture, and a route for every request.

``lm_eval --model hf-router --model_args pretrained=BASE,adapters=DIR,router=DIR,routing=learned``

- ``adapters=DIR`` holds one peft adapter per culture in ``DIR/<culture slug>/`` (``culturesafe train
  adapters`` writes this); all are loaded once into one ``PeftModel``.
- ``routing=learned`` asks the router (``router=DIR``, ``culturesafe train router``) for each prompt;
  ``oracle`` takes the document's own ``country``; ``fixed:<culture>`` sends everything to one adapter;
  ``none`` runs the base model.
- A batch mixing cultures runs in one forward pass (loglikelihood) or one ``generate`` call with peft's
  per-row ``adapter_names`` (``"__base__"`` = no adapter); lm-eval's batching is left as it is.
- The route of every request is appended to its arguments (see :mod:`.route_tags`), so it is in the
  samples file and in the ``--use_cache`` key.
- Adapters and router record the prompt format they were trained on (raw, or chat for
  ``--apply_chat_template``); a run that sends the other format gets a warning naming the retraining
  command, and the formats are in the results' model info.

HFLM hands ``_model_call`` only a token tensor, so rows are matched to routes by their tokens
(right padding is zeros); ``generate_until`` learns the row order from ``tok_batch_encode``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from lm_eval.models.huggingface import HFLM

from culturesafe_ext.data.schema import slug
from culturesafe_ext.models import route_tags
from culturesafe_ext.models.culture_router import ROUTER_FILE, CultureRouter, file_fingerprint, hf_forward, mean_pooled
from culturesafe_ext.models.route_tags import BASE

log = logging.getLogger("culturesafe")

ADAPTER_CONFIG = "adapter_config.json"
MODES = ("learned", "oracle", "fixed", "none")

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
    from culturesafe_ext.training.adapters import SUMMARY_FILE

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
        **kwargs: Any,
    ) -> None:
        if kwargs.get("peft"):
            raise ValueError("hf-router loads its adapters from adapters=DIR; do not pass peft=")
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
        self.router_batch_size = int(router_batch_size)
        files = [f for d in self.adapter_dirs.values() for f in sorted(d.glob("adapter_*")) if f.is_file()]
        self.adapters_fingerprint = file_fingerprint(files)
        self.router_fingerprint = file_fingerprint([Path(router) / ROUTER_FILE]) if self.router else None
        self._learned: dict[str, str] = {}  # prompt -> route, so each prompt is classified once
        self._text_routes: dict[tuple, str] | None = None  # (context, continuation|gen_kwargs key) -> route
        self._token_routes: dict[tuple[int, ...], str] | None = None
        self._token_lengths: list[int] = []
        self._batch_adapters: list[str] | None = None
        self.route_counts: Counter[str] = Counter()
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
        todo = [r for r in requests if route_tags.tag_of(r.args) is None]
        if not todo:
            return
        self._check_prompt_format()
        if self.routing.mode != "none" and any(r.request_type == "loglikelihood_rolling" for r in todo):
            raise ValueError(
                "hf-router routes loglikelihood and generate_until requests; perplexity tasks "
                "(loglikelihood_rolling) run only with routing=none"
            )
        for request, route in zip(todo, self._routes(todo), strict=True):
            request.arguments = (*request.args, route_tags.make_tag(route, self.adapters_fingerprint))
            self.route_counts[route] += 1

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
            log.warning("hf-router: no adapter for %r (oracle); that request runs on the base model", country)
            return BASE
        return name

    def _learned_routes(self, prompts: list[str]) -> list[str]:
        new = sorted({p for p in prompts if p not in self._learned})
        if new:
            forward = hf_forward(self.model, adapter_names=lambda n: [BASE] * n)
            max_length = int(self.router.info.get("max_length", 512))  # as in training
            features = mean_pooled(forward, self.tokenizer, new, self.router_batch_size, max_length, self.device)
            for prompt, label in zip(new, self.router.predict(features), strict=True):
                self._learned[prompt] = label if label in self.adapter_dirs else BASE
        return [self._learned[p] for p in prompts]

    # --- loglikelihood: route by (context, continuation), then by the row's tokens --------------------
    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        self.culturesafe_tag_requests(requests)
        keys = [route_tags.untagged(r.args) for r in requests]
        routes = [route_tags.tag_of(r.args)[route_tags.ROUTE_KEY] for r in requests]
        out: list[Any] = [None] * len(requests)
        for wave in route_tags.waves(keys, routes):
            self._text_routes = {keys[i]: routes[i] for i in wave}
            stripped = [dataclasses.replace(requests[i], arguments=keys[i]) for i in wave]
            try:
                results = super().loglikelihood(stripped, disable_tqdm=disable_tqdm)
            finally:
                self._text_routes = None
            for i, result in zip(wave, results, strict=True):
                out[i] = result
        return out

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if self._text_routes is None:  # loglikelihood_rolling (routing=none only)
            routes = [BASE] * len(requests)
        else:
            routes = [self._text_routes[tuple(req_str)] for req_str, _, _ in requests]
        # exactly the row HFLM feeds the model for a causal LM
        rows = [tuple((ctx + cont)[-(self.max_length + 1) :][:-1]) for _, ctx, cont in requests]
        out: list[Any] = [None] * len(requests)
        for wave in route_tags.waves(rows, routes):
            self._token_routes = {rows[i]: routes[i] for i in wave}
            self._token_lengths = sorted({len(rows[i]) for i in wave})
            try:
                results = super()._loglikelihood_tokens(
                    [requests[i] for i in wave], disable_tqdm=disable_tqdm, override_bs=override_bs
                )
            finally:
                self._token_routes = None
            for i, result in zip(wave, results, strict=True):
                out[i] = result
        return out

    def _row_adapters(self, inps: torch.Tensor) -> list[str]:
        """The adapter of each row of a right-padded batch, found by its tokens."""
        table = self._token_routes
        if table is None:
            return [BASE] * inps.shape[0]
        names: list[str | None] = []
        for row in inps.tolist():
            last = len(row)
            while last > 0 and row[last - 1] == 0:
                last -= 1
            hits = {table[t] for n in self._token_lengths if last <= n <= len(row) and (t := tuple(row[:n])) in table}
            if len(hits) > 1:
                raise RuntimeError(f"hf-router: a batch row matches requests with different routes {sorted(hits)}")
            names.append(hits.pop() if hits else None)
        if all(n is None for n in names):  # HFLM's batch-size probe (batch_size=auto): no real request
            return [next(iter(self.adapter_dirs))] * len(names)
        if any(n is None for n in names):
            raise RuntimeError("hf-router: a batch row could not be matched to its request's route")
        return names  # type: ignore[return-value]

    def _model_call(self, inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        names = self._row_adapters(inps)
        with (
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ),
        ):
            return self.model(inps, adapter_names=names).logits

    # --- generate_until: route by context; tok_batch_encode sees each batch's rows in order -----------
    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        self.culturesafe_tag_requests(requests)
        args = [route_tags.untagged(r.args) for r in requests]
        routes = [route_tags.tag_of(r.args)[route_tags.ROUTE_KEY] for r in requests]
        out: list[Any] = [None] * len(requests)
        for wave in route_tags.waves([a[0] for a in args], routes):
            self._text_routes = {(args[i][0],): routes[i] for i in wave}
            stripped = [dataclasses.replace(requests[i], arguments=args[i]) for i in wave]
            try:
                results = super().generate_until(stripped, disable_tqdm=disable_tqdm)
            finally:
                self._text_routes = None
            for i, result in zip(wave, results, strict=True):
                out[i] = result
        return out

    def tok_batch_encode(self, strings: list[str], *args: Any, **kwargs: Any):
        if self._text_routes is not None:
            self._batch_adapters = [self._text_routes[(s,)] for s in strings]
        return super().tok_batch_encode(strings, *args, **kwargs)

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        names, self._batch_adapters = self._batch_adapters, None
        if names is None or len(names) != context.shape[0]:
            raise RuntimeError("hf-router: generate was called without the routes of its batch")
        return super()._model_generate(context, max_length, stop, adapter_names=names, **generation_kwargs)

    # --- cache and model info -----------------------------------------------------------------------
    def set_cache_hook(self, cache_hook) -> None:
        if getattr(cache_hook, "dbdict", None) is not None and not route_tags.cache_patch_installed():
            raise RuntimeError(
                "hf-router cannot key lm-eval's --use_cache by route on this lm-eval version; run without --use_cache"
            )
        super().set_cache_hook(route_tags.RoutedCacheHook(cache_hook, self._partial_tag))

    def _partial_tag(self, attr: str, req: tuple) -> dict | None:
        table = self._text_routes
        if table is None:
            return None
        key = req[:1] if attr == "generate_until" else req
        route = table.get(key)
        return None if route is None else route_tags.make_tag(route, self.adapters_fingerprint)

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        info.update(
            routing=str(self.routing),
            adapters=sorted(self.adapter_dirs),
            adapters_fingerprint=self.adapters_fingerprint,
            router_fingerprint=self.router_fingerprint,
            route_counts=dict(self.route_counts),
            prompt_format=self.prompt_format,
            trained_prompt_formats=self.trained_prompt_formats(),
        )
        return info
