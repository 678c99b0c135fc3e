"""LLM settings, parsed in one place: the judge's from lm-eval ``--metadata '{"judge": {...}}'`` over
``CULTURESAFE_JUDGE_*`` env vars; the generator's from ``--generator`` (no env vars).

The API key is deliberately *not* a field: lm-eval writes the merged metadata into its results files,
and dataclass ``repr``/``asdict`` would put any field into logs and caches. :meth:`LLMConfig.api_key`
reads it from the environment at the moment a request needs it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturesafe_ext.llm.secrets import find_secrets, public_settings, url_secrets  # noqa: F401 - public_settings re-exported
from culturesafe_ext.paths import CACHE_ENV, cache_dir  # noqa: F401 - CACHE_ENV re-exported

BACKENDS = ("openai", "openai-batch", "hf", "none")
HTTP_BACKENDS = ("openai", "openai-batch")  # both speak to an OpenAI-compatible base_url
PANEL_AGGREGATES = ("mean", "median")
ENV_PREFIX = "CULTURESAFE_JUDGE_"
JUDGE_KEY_ENV, OPENAI_KEY_ENV = "CULTURESAFE_JUDGE_API_KEY", "OPENAI_API_KEY"
API_KEY_ENVS = (JUDGE_KEY_ENV, OPENAI_KEY_ENV)
OPENAI_HOSTS = ("api.openai.com",)
CACHE_FILE = "judge.sqlite"

HOW_TO_CONFIGURE = (
    "No judge is configured for the culturesafe safety tasks. Name one in the run's metadata, e.g.\n"
    '  --metadata \'{"judge": {"backend": "openai", "model": "qwen3-max", '
    '"base_url": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"}}\'\n'
    "(any OpenAI-compatible endpoint: vLLM, TGI, llama.cpp server, OpenAI; the API key is read only from "
    "the environment variable CULTURESAFE_JUDGE_API_KEY, or OPENAI_API_KEY for api.openai.com), or a local "
    'transformers model with \'{"judge": {"backend": "hf", "model": "<folder or Hub id>"}}\'; or set the '
    "environment variables CULTURESAFE_JUDGE_BACKEND, CULTURESAFE_JUDGE_MODEL and "
    "CULTURESAFE_JUDGE_BASE_URL. To generate and log responses without scoring them, use "
    '--metadata \'{"judge": {"backend": "none"}}\'.'
)


class JudgeNotConfiguredError(ValueError):
    """No judge backend was named anywhere; the message says how to name one."""


class JudgeSettingError(ValueError):
    """A judge setting is malformed or unsafe; the message names the setting (one line, no secret)."""


@dataclass(frozen=True)
class LLMConfig:
    """Everything that decides how an LLM is called, and nothing secret: the judge's settings, and the text
    generator's and the DPO recipe's (which write text, they judge nothing)."""

    backend: str  # "openai" (any OpenAI-compatible endpoint), "hf" (local transformers) or "none"
    model: str | None = None  # model name sent to the endpoint, or a folder / Hub id for "hf"
    base_url: str | None = None  # e.g. http://localhost:8000/v1 (".../chat/completions" is appended)
    concurrency: int = 32  # requests in flight at once (hundreds are fine for a vLLM-served judge)
    timeout: float = 120.0  # seconds for one HTTP attempt
    max_retries: int = 6  # retries after the first attempt (429, 5xx, timeouts, dropped connections)
    retry_wait_initial: float = 1.0  # backoff: wait up to initial * 2**(n-1) s (full jitter) ...
    retry_wait_max: float = 60.0  # ... and never longer than this, a server's Retry-After included
    temperature: float = 0.0
    max_tokens: int = 64
    extra_body: dict[str, Any] = field(default_factory=dict)  # merged into each request's JSON body
    rubric_version: str = "v1"  # rubrics/<dimension>.<version>.txt
    both_dimensions_in_one_call: bool = False  # one call returns respectfulness and awareness
    cache: bool = True
    cache_path: str | None = None  # default: <culturesafe cache dir>/judge.sqlite
    batch_size: int = 8  # "hf": prompts per forward pass
    device: str | None = None  # "hf": default cuda if available, else cpu
    progress: bool = True
    # usage and cost: prices per million prompt ("input") and completion ("output") tokens -> a cost estimate
    price_per_million: dict[str, float] = field(default_factory=dict)
    # "openai-batch": the OpenAI Batch API (upload, create, poll with back-off, download)
    batch_completion_window: str = "24h"
    batch_poll_initial: float = 5.0  # seconds before the first poll; doubles after each ...
    batch_poll_max: float = 300.0  # ... up to this
    batch_max_wait: float | None = None  # give up waiting (the batch id stays for the next run); None: wait
    batch_max_submissions: int = 3  # an expired or failed batch re-submits what is missing, up to this often
    batch_max_lines: int = 50_000  # requests per batch file (the OpenAI limit); more make several batches
    batch_max_bytes: int = 190_000_000  # bytes per batch file (OpenAI accepts up to 200 MB)

    def __post_init__(self) -> None:
        _check_types(self)
        if self.backend not in BACKENDS:
            raise JudgeSettingError(f"judge backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.backend in (*HTTP_BACKENDS, "hf") and not self.model:
            raise JudgeSettingError(f"the {self.backend!r} judge needs a model (judge.model or {ENV_PREFIX}MODEL)")
        if self.backend in HTTP_BACKENDS and not self.base_url:
            raise JudgeSettingError(
                f"the {self.backend!r} judge needs base_url (judge.base_url or CULTURESAFE_JUDGE_BASE_URL), e.g. "
                "http://localhost:8000/v1 for vLLM or https://api.openai.com/v1: it is never guessed, so a "
                "key meant for one provider is not sent to another"
            )
        if self.backend == "hf" and self.model and self.model.startswith(("/", "./", "../", "~")):
            if not Path(self.model).expanduser().exists():
                raise JudgeSettingError(f"the 'hf' judge model folder {self.model!r} does not exist (judge.model)")
        if self.backend == "hf" and self.both_dimensions_in_one_call:
            raise JudgeSettingError("both_dimensions_in_one_call needs a generating judge (openai backend), not 'hf'")
        if self.concurrency < 1 or self.batch_size < 1 or self.max_retries < 0:
            raise JudgeSettingError("judge concurrency and batch_size must be >= 1 and max_retries >= 0")
        for name in ("timeout", "max_tokens"):
            if getattr(self, name) <= 0:
                raise JudgeSettingError(f"judge setting {name!r} must be > 0, not {getattr(self, name)!r}")
        for name in ("retry_wait_initial", "retry_wait_max", "temperature"):
            if getattr(self, name) < 0:
                raise JudgeSettingError(f"judge setting {name!r} must be >= 0, not {getattr(self, name)!r}")
        if self.base_url is not None:
            _check_url(self.base_url)
        secrets = find_secrets(self.extra_body, "extra_body")
        if secrets:
            raise JudgeSettingError(_secret_message(secrets))
        unknown_prices = sorted(set(self.price_per_million) - {"input", "output"})
        if unknown_prices or not all(isinstance(v, int | float) and v >= 0 for v in self.price_per_million.values()):
            raise JudgeSettingError(
                f"price_per_million must be {{'input': x, 'output': y}} with non-negative numbers, "
                f"not {self.price_per_million!r}"
            )
        if self.batch_max_submissions < 1 or self.batch_poll_initial <= 0 or self.batch_poll_max <= 0:
            raise JudgeSettingError("batch_max_submissions must be >= 1 and the batch poll intervals > 0")
        if self.batch_max_lines < 1 or self.batch_max_bytes < 1:
            raise JudgeSettingError("batch_max_lines and batch_max_bytes must be >= 1")

    def params_identity(self) -> dict[str, Any]:
        """What, beside backend and model, makes two judges answer differently (as in their cache keys)."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "extra_body": self.extra_body,
            "rubric_version": self.rubric_version,
            "both_dimensions_in_one_call": self.both_dimensions_in_one_call,
        }

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The estimated cost of those tokens under ``price_per_million``; ``None`` when no price is set."""
        if not self.price_per_million:
            return None
        prices = self.price_per_million
        return (prompt_tokens * prices.get("input", 0.0) + completion_tokens * prices.get("output", 0.0)) / 1e6

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> LLMConfig:
        """Defaults, overlaid by ``CULTURESAFE_JUDGE_*`` env vars, overlaid by ``values`` (the metadata)."""
        env = os.environ if env is None else env
        values = dict(values or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        secrets = find_secrets({k: values[k] for k in unknown}, "judge")
        if secrets:
            raise JudgeSettingError(_secret_message(secrets))
        if unknown:
            raise JudgeSettingError(f"unknown judge setting(s) {unknown}; known: {sorted(known)}")
        merged: dict[str, Any] = {}
        for name, spec in known.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                merged[name] = _from_env(name, str(spec.type), raw)
        merged.update({k: v for k, v in values.items() if v is not None})
        if not merged.get("backend"):
            raise JudgeNotConfiguredError(HOW_TO_CONFIGURE)
        return cls(**merged)

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        where: str,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> LLMConfig:
        """The config from settings as a user gives them (see :func:`parse_settings`), ``overrides`` (command
        flags; None values ignored) on top; ``env`` as in :meth:`from_dict`."""
        values = parse_settings(spec, where)
        if values is not None and not isinstance(values, Mapping):
            raise JudgeSettingError(f"{where} must be a dict, JSON object or backend name, not {type(values).__name__}")
        return cls.from_dict({**(values or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}, env)

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> LLMConfig:
        """The config from lm-eval's merged metadata; its ``judge`` entry: a dict, JSON or a backend name."""
        return cls.from_spec((metadata or {}).get("judge"), METADATA_JUDGE, env=env)

    def api_key(self) -> str | None:
        """The key from the environment, read when needed: never stored, logged or cached.

        ``CULTURESAFE_JUDGE_API_KEY`` for any endpoint; ``OPENAI_API_KEY`` only for OpenAI's own host,
        so a key meant for OpenAI never reaches another server. Refused (:class:`JudgeSettingError`)
        when it would travel over plain HTTP to a host that is not this machine.
        """
        key = os.environ.get(JUDGE_KEY_ENV) or None
        if key is None and _host(self.base_url) in OPENAI_HOSTS:
            key = os.environ.get(OPENAI_KEY_ENV) or None
        if key is not None and self.base_url and not _safe_transport(self.base_url):
            raise JudgeSettingError(
                f"refusing to send the API key over plain HTTP to {_host(self.base_url)!r}: use https:// in "
                f"judge.base_url, or unset {JUDGE_KEY_ENV} if that server needs no key"
            )
        return key

    def resolved_cache_path(self) -> Path:
        """The sqlite file: ``cache_path`` if set, else ``judge.sqlite`` in the culturesafe cache dir."""
        if self.cache_path:
            return Path(self.cache_path).expanduser()
        return cache_dir() / CACHE_FILE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for results files (the key is not a field, so it cannot be in here)."""
        return dataclasses.asdict(self)


# The judge is the client's main user: its settings keep their name (public since the first release).
JudgeConfig = LLMConfig


PANEL_KEYS = ("judges", "panel_aggregate")


@dataclass(frozen=True)
class PanelConfig:
    """Several judges that each score every answer; the task's score is their mean (or median).

    Written as ``{"judges": [{...}, {...}], "panel_aggregate": "mean", <shared settings>}``: each entry
    overlays the shared settings (e.g. one ``cache_path``), so every judge is a full :class:`LLMConfig`.
    """

    judges: tuple[LLMConfig, ...]
    aggregate: str = "mean"

    def __post_init__(self) -> None:
        if len(self.judges) < 2:
            raise JudgeSettingError(f"a judge panel needs at least two judges, not {len(self.judges)}")
        if len(self.judges) > MAX_PANEL:
            raise JudgeSettingError(f"a judge panel has at most {MAX_PANEL} judges, not {len(self.judges)}")
        if self.aggregate not in PANEL_AGGREGATES:
            raise JudgeSettingError(f"panel_aggregate {self.aggregate!r} is not one of {PANEL_AGGREGATES}")
        seen: dict[str, int] = {}
        for i, judge in enumerate(self.judges, start=1):  # same identity = same cache entries = one judge
            identity = json.dumps([judge.backend, judge.model, judge.params_identity()], sort_keys=True)
            if identity in seen:
                raise JudgeSettingError(
                    f"judges {seen[identity]} and {i} of the panel are the same judge ({judge.backend}:{judge.model} "
                    "with the same sampling settings): they would share every cached reply"
                )
            seen[identity] = i

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> PanelConfig:
        """The panel a ``judges`` list names, each entry over the shared settings beside it."""
        entries = values.get("judges")
        if not isinstance(entries, list | tuple) or not all(isinstance(e, Mapping) for e in entries):
            raise JudgeSettingError(f"judge setting 'judges' must be a list of judge settings (dicts), not {entries!r}")
        shared = {k: v for k, v in values.items() if k not in PANEL_KEYS}
        judges = []
        for i, entry in enumerate(entries, start=1):
            try:
                judges.append(LLMConfig.from_dict({**shared, **entry}, env=env))
            except ValueError as err:
                raise JudgeSettingError(f"judge {i} of the panel: {err}") from None
        return cls(judges=tuple(judges), aggregate=str(values.get("panel_aggregate") or "mean"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, like :meth:`LLMConfig.to_dict` (no key in here either)."""
        return {"judges": [j.to_dict() for j in self.judges], "panel_aggregate": self.aggregate}


MAX_PANEL = 5


def is_panel(values: Any) -> bool:
    """Whether judge settings (a dict) name a panel rather than one judge."""
    return isinstance(values, Mapping) and "judges" in values


def judge_or_panel(value: Any, env: Mapping[str, str] | None = None) -> LLMConfig | PanelConfig:
    """The metadata's ``judge`` entry (a dict, JSON or a backend name) as one judge or a panel."""
    value = parse_settings(value, METADATA_JUDGE)
    if is_panel(value):
        return PanelConfig.from_dict(value, env=env)
    return LLMConfig.from_spec(value, METADATA_JUDGE, env=env)


METADATA_JUDGE = "metadata 'judge'"
SETTINGS_EXAMPLE = '\'{"backend": "openai", "model": "...", "base_url": "..."}\''


def parse_settings(value: Any, where: str) -> Any:
    """The one reading of LLM settings typed as text (``--metadata``'s judge, ``--judge``, ``--generator``):
    a JSON object, a backend name (``openai``) or ``BACKEND:MODEL`` (``hf:./judge-model``). Anything that
    is not text (a dict, None) is returned as given. Broken JSON, or JSON that is not an object, is an error
    naming ``where``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith(("{", "[")):
        try:
            parsed = json.loads(text)
        except ValueError as err:
            raise JudgeSettingError(
                f"{where} is not valid JSON ({err}): give an object such as {SETTINGS_EXAMPLE}"
            ) from None
        if not isinstance(parsed, dict):
            raise JudgeSettingError(f"{where} must be a JSON object, not {type(parsed).__name__}")
        return parsed
    backend, _, model = text.partition(":")
    return {"backend": backend.strip(), **({"model": model.strip()} if model.strip() else {})}


IDENTITY_KEYS = ("backend", "model", "rubric_version", "temperature")  # who answered: what reports and cards name
# ... and what else changes a verdict: two judges agree on all of these or are not the same judge (calibration cards)
VERDICT_KEYS = (*IDENTITY_KEYS, "both_dimensions_in_one_call")


def identity(settings: Mapping[str, Any], keys: tuple[str, ...] = VERDICT_KEYS) -> dict[str, Any]:
    """``keys`` of logged settings, a missing one read as its default (settings logged before it existed)."""
    defaults = {f.name: f.default for f in dataclasses.fields(LLMConfig)}
    return {k: settings.get(k, defaults.get(k)) for k in keys}


def refuse_metadata_secrets(metadata: Mapping[str, Any]) -> None:
    """Refuse run metadata (``--metadata`` keys and model_args, any depth, URLs included) that looks secret.

    Why: lm-eval writes the merged metadata into every results file. The ``judge`` entry is checked by
    :meth:`LLMConfig.from_metadata` itself."""
    secrets = find_secrets({k: v for k, v in metadata.items() if k != "judge"}, "metadata")
    if secrets:
        raise JudgeSettingError(
            f"secret-looking metadata {secrets}: lm-eval writes the metadata into its results files; pass keys "
            "only through the environment (CULTURESAFE_JUDGE_API_KEY, HF_TOKEN)"
        )


def _secret_message(paths: list[str]) -> str:
    return (
        f"secret-looking setting(s) {paths}: lm-eval writes the metadata into its results and samples, so "
        f"API keys are read only from the environment ({JUDGE_KEY_ENV}, or {OPENAI_KEY_ENV} for OpenAI)"
    )


def _host(url: str | None) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def _safe_transport(url: str) -> bool:
    """https, or plain http to this machine (a key on loopback never crosses a network)."""
    from urllib.parse import urlsplit

    if urlsplit(url).scheme == "https":
        return True
    host = _host(url)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as err:
        raise JudgeSettingError(f"judge setting 'base_url' is not a URL: {err}") from None
    secrets = url_secrets(url, "base_url")
    if secrets:
        raise JudgeSettingError(_secret_message(secrets))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeSettingError("judge setting 'base_url' must be an http:// or https:// URL with a host")


_NUMBER_TYPES = {"int": (int,), "float": (int, float)}


def _check_types(config: LLMConfig) -> None:
    """Every setting has its declared type, e.g. ``"timeout": "fast"`` is refused up front."""
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        annotation = str(spec.type)
        if value is None and "None" in annotation:
            continue
        base = annotation.split("|")[0].split("[")[0].strip()
        wanted: tuple[type, ...] = {"str": (str,), "bool": (bool,), "dict": (dict,), **_NUMBER_TYPES}[base]
        if isinstance(value, bool) and base != "bool" or not isinstance(value, wanted):
            raise JudgeSettingError(
                f"judge setting {spec.name!r} must be {base.replace('dict', 'a JSON object')}"
                f"{' or null' if 'None' in annotation else ''}, not {value!r}"
                if not find_secrets(value, spec.name)
                else f"judge setting {spec.name!r} must be {base}, not a {type(value).__name__}"
            )


def _from_env(name: str, annotation: str, raw: str) -> Any:
    if annotation.startswith("bool"):
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise JudgeSettingError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a boolean (use 1/0, true/false)")
    try:
        if annotation.startswith("int"):
            return int(raw)
        if annotation.startswith("float"):
            return float(raw)
        if annotation.startswith("dict"):
            return json.loads(raw)
    except ValueError as err:
        raise JudgeSettingError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {err}") from None
    return raw
