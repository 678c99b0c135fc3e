"""Which adapter answers each request: the routing decisions ``hf-router`` and ``served-router`` share.

One base model, one LoRA adapter per culture in ``adapters=DIR/<culture slug>/``, and a route per request:
``routing=learned`` asks the culture router (features from the base model, computed by the caller),
``oracle`` takes the document's own ``country``, ``fixed:<culture>`` sends everything to one adapter and
``none`` runs the base model. A culture without an adapter is never a silent fallback: ``missing_adapter=error``
(default) refuses it, ``missing_adapter=base`` runs it on the base model, warns and counts it.

:class:`RoutePlanner` holds that policy and its counts; it tags each request with its route (see
:mod:`.route_tags`) and groups tagged requests by route. Running a group on its adapter is the model's job:
``hf-router`` activates the peft adapter in-process, ``served-router`` names the adapter in each HTTP request.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from culturesafe_ext.data.adaculturesafe_schema import slug
from culturesafe_ext.routing import route_tags
from culturesafe_ext.routing.classifier import ROUTER_FILE, CultureRouter, file_fingerprint
from culturesafe_ext.routing.route_tags import BASE

log = logging.getLogger("culturesafe")

ADAPTER_CONFIG = "adapter_config.json"
MODES = ("learned", "oracle", "fixed", "none")
MISSING_POLICIES = ("error", "base")

# prompts -> the router's features for them (float32 [n, hidden]), computed with the base model
Features = Callable[[list[str]], Any]


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


def adapters_manifest(folder: str | Path) -> dict[str, Any] | None:
    """What ``culturesafe train adapters`` recorded for this folder (``adapters.json``), or None (made elsewhere)."""
    from culturesafe_ext.data.manifests import ADAPTERS_SUMMARY_FILE

    path = Path(folder).expanduser() / ADAPTERS_SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not readable JSON ({err})") from err


def trained_prompt_format(folder: str | Path) -> str | None:
    """The prompt format ``culturesafe train adapters`` recorded for this folder (older runs: raw)."""
    manifest = adapters_manifest(folder)
    return None if manifest is None else str(manifest.get("prompt_format", "raw"))


class RoutePlanner:
    """The routes of a run's requests; ``who`` (``hf-router``, ``served-router``) names the model in messages."""

    def __init__(
        self,
        who: str,
        adapters: str | Path,
        routing: str = "learned",
        router: str | Path | None = None,
        missing_adapter: str = "error",
    ) -> None:
        if missing_adapter not in MISSING_POLICIES:
            raise ValueError(f"missing_adapter={missing_adapter!r}: expected one of {', '.join(MISSING_POLICIES)}")
        self.who = who
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
        self.router = CultureRouter.load(router) if self.routing.mode == "learned" else None
        self.router_dir = router
        files = [f for d in self.adapter_dirs.values() for f in sorted(d.glob("adapter_*")) if f.is_file()]
        self.adapters_fingerprint = file_fingerprint(files)
        self.router_fingerprint = file_fingerprint([Path(router) / ROUTER_FILE]) if self.router else None
        self.adapters_prompt_format = trained_prompt_format(adapters)
        self.prompt_format = "raw"  # "chat" once lm-eval renders a request through apply_chat_template
        self.route_counts: Counter[str] = Counter()
        self.fallback_counts: Counter[str] = Counter()  # culture without an adapter -> requests run on the base
        self._learned: dict[str, str] = {}  # prompt -> route, so each prompt is classified once
        self._format_checked = False
        if self.router is not None:
            self._check_router_classes()

    # --- which adapters a run may need -----------------------------------------------------------------
    def needed_adapters(self) -> list[str]:
        """The adapters this routing mode can send requests to (what a server must serve)."""
        if self.routing.mode == "none":
            return []
        if self.routing.mode == "fixed":
            return [str(self.routing.culture)]
        if self.router is not None:
            return [c for c in self.adapter_dirs if c in self.router.classes]
        return list(self.adapter_dirs)

    def drop_adapters(self, names: Sequence[str], why: str) -> None:
        """Treat ``names`` as missing from now on (``missing_adapter=base`` only: their requests run on the base)."""
        if self.missing_adapter == "error":
            raise ValueError(f"{self.who}: {why}; pass missing_adapter=base to run such requests on the base model")
        if self.routing.mode == "fixed" and self.routing.culture in names:
            raise ValueError(f"{self.who}: routing={self.routing} but {why}")
        for name in names:
            self.adapter_dirs.pop(name, None)
        log.warning("%s: %s; their requests run on the base model and are counted in fallback_counts", self.who, why)

    def _check_router_classes(self) -> None:
        """A router class without an adapter is refused (``missing_adapter=error``) or announced (``base``);
        an adapter the router never picks is announced."""
        assert self.router is not None
        missing = sorted(set(self.router.classes) - set(self.adapter_dirs))
        unused = sorted(set(self.adapter_dirs) - set(self.router.classes))
        if missing and self.missing_adapter == "error":
            raise ValueError(
                f"{self.who}: the router in {self.router_dir} can route to {', '.join(missing)}, but adapters= has "
                f"no adapter for {'it' if len(missing) == 1 else 'them'} (it has: {', '.join(self.adapter_dirs)}). "
                "Train the missing adapters (`culturesafe train adapters`), train the router on the adapters' "
                "cultures, or pass missing_adapter=base to run those requests on the base model (counted as "
                "fallback_counts)."
            )
        if missing:
            log.warning(
                "%s: the router can route to %s, which have no adapter: those requests run on the base "
                "model (missing_adapter=base) and are counted in fallback_counts",
                self.who,
                ", ".join(missing),
            )
        if unused:
            log.warning("%s: the router never routes to the adapter(s) %s", self.who, ", ".join(unused))

    def _fallback(self, culture: str, where: str) -> str:
        """The route of a request whose culture has no adapter: refused, or the base model, counted."""
        if self.missing_adapter == "error":
            raise ValueError(
                f"{self.who}: {where} routes to {culture!r}, which has no adapter in adapters= (it has: "
                f"{', '.join(self.adapter_dirs)}); pass missing_adapter=base to run such requests on the base model"
            )
        self.fallback_counts[culture] += 1
        return BASE

    # --- prompt format ---------------------------------------------------------------------------------
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
                    "%s: the %s were trained on %s prompts but this run sends %s prompts%s; results are "
                    "valid but routing/adapters see a format they were not trained on. Retrain with "
                    "`culturesafe train %s --prompt-format %s` to match.",
                    self.who,
                    "router's features" if part == "router" else part,
                    trained,
                    self.prompt_format,
                    " (--apply_chat_template)" if self.prompt_format == "chat" else "",
                    part,
                    self.prompt_format,
                )

    # --- deciding routes -------------------------------------------------------------------------------
    def tag(self, requests: list, features: Features | None = None) -> None:
        """Append the route tag to every request that has none (idempotent). ``features`` computes the router's
        features for prompts (``routing=learned`` only)."""
        # one Instance can come several times (its ``repeats``, and lm-eval's data-parallel padding repeats a
        # rank's last request): tag and count each object once
        todo = list({id(r): r for r in requests if route_tags.tag_of(r.args) is None}.values())
        if not todo:
            return
        self._check_prompt_format()
        before = Counter(self.fallback_counts)
        for request, route in zip(todo, self._routes(todo, features), strict=True):
            request.arguments = (*request.args, route_tags.make_tag(route, self.adapters_fingerprint))
            self.route_counts[route] += 1
        fell_back = self.fallback_counts - before
        if fell_back:
            log.warning(
                "%s: %d request(s) routed to cultures without an adapter ran on the base model "
                "(missing_adapter=base): %s",
                self.who,
                sum(fell_back.values()),
                ", ".join(f"{c}: {n}" for c, n in sorted(fell_back.items())),
            )

    def _routes(self, requests: list, features: Features | None) -> list[str]:
        mode = self.routing.mode
        if mode == "none":
            return [BASE] * len(requests)
        if mode == "fixed":
            return [str(self.routing.culture)] * len(requests)
        if mode == "oracle":
            return [self._oracle(r) for r in requests]
        if features is None:
            raise ValueError(f"{self.who}: routing=learned needs the base model's features, and none were given")
        return self._learned_routes([r.args[0] for r in requests], features)

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

    def _learned_routes(self, prompts: list[str], features: Features) -> list[str]:
        assert self.router is not None
        new = sorted({p for p in prompts if p not in self._learned})
        if new:
            for prompt, label in zip(new, self.router.predict(features(new)), strict=True):
                self._learned[prompt] = label
        return [
            self._learned[p]
            if self._learned[p] in self.adapter_dirs
            else self._fallback(self._learned[p], "the router")
            for p in prompts
        ]

    # --- running by route ------------------------------------------------------------------------------
    @staticmethod
    def groups(requests: list) -> dict[str, list[int]]:
        """Route -> indices of the (tagged) requests on it, routes in first-seen order."""
        out: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            out.setdefault(route_tags.tag_of(request.args)[route_tags.ROUTE_KEY], []).append(i)
        return out

    def by_route(self, requests: list, run_group: Callable[[str, list], list]) -> list:
        """Group tagged requests by route, ``run_group(route, requests without their tags)`` for each,
        results back in request order."""
        out: list[Any] = [None] * len(requests)
        for route, members in self.groups(requests).items():
            stripped = [
                dataclasses.replace(requests[i], arguments=route_tags.untagged(requests[i].args)) for i in members
            ]
            for i, result in zip(members, run_group(route, stripped), strict=True):
                out[i] = result
        return out

    def model_info(self, route_counts: Counter | None = None, fallback_counts: Counter | None = None) -> dict:
        """What the results' model info records about routing (counts: these, or this process's own)."""
        return {
            "routing": str(self.routing),
            "adapters": sorted(self.adapter_dirs),
            "adapters_fingerprint": self.adapters_fingerprint,
            "router_fingerprint": self.router_fingerprint,
            "route_counts": dict(self.route_counts if route_counts is None else route_counts),
            "missing_adapter": self.missing_adapter,
            "fallback_counts": dict(self.fallback_counts if fallback_counts is None else fallback_counts),
            "prompt_format": self.prompt_format,
            "trained_prompt_formats": self.trained_prompt_formats(),
        }
