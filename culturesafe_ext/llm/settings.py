"""LLM settings, parsed in one place: a pydantic model whose validation refuses unknown keys, wrong types,
NaN/Infinity and unsafe values with one-line messages naming the setting.

Who reads them: the text generator (``--generator``) and the DPO recipe use :class:`LLMConfig` as it is (no
environment variables); the judge's settings (:mod:`culturesafe_ext.judge.settings`) extend it with their own
fields and read ``CULTURESAFE_JUDGE_*`` environment variables through :attr:`LLMConfig.env_prefix`.

The API key is deliberately *not* a field: lm-eval writes the merged metadata into its results files, and a
model's ``repr``/dump would put any field into logs and caches. :meth:`LLMConfig.api_key` reads it from the
environment at the moment a request needs it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from culturesafe_ext.llm.secrets import find_secrets, public_settings, url_secrets  # noqa: F401 - public_settings re-exported
from culturesafe_ext.paths import CACHE_ENV, cache_dir  # noqa: F401 - CACHE_ENV re-exported

BACKENDS = ("openai", "openai-batch", "hf", "none")
HTTP_BACKENDS = ("openai", "openai-batch")  # both speak to an OpenAI-compatible base_url
KEY_ENV, OPENAI_KEY_ENV = "CULTURESAFE_JUDGE_API_KEY", "OPENAI_API_KEY"  # the key's name since the first release
API_KEY_ENVS = (KEY_ENV, OPENAI_KEY_ENV)
OPENAI_HOSTS = ("api.openai.com",)
CACHE_FILE = "judge.sqlite"  # the cache's file name since the first release (existing caches stay valid)
# What decides how the model samples, besides backend, model and the prompt: the one list the cache key and the
# judge's identity (culturesafe_ext.judge.settings.identity) read. top_p and seed count only when set, so the
# cache keys of runs made before they existed stay the same.
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "seed", "extra_body")
# Request fields extra_body may not set: they are settings of their own (or the request itself), and extra_body
# is sent with every request, so it would change the model, its sampling or its prompt behind the settings'
# back while results, caches and judge cards name the configured ones.
RESERVED_BODY_KEYS = ("model", "messages", "temperature", "max_tokens", "response_format", "n", "stream")
_RESERVED_HINT = {
    "messages": "the prompt is the rubric's (rubric_version)",
    "response_format": "use the judge setting 'structured': true",
    "n": "one reply per request is read",
    "stream": "replies are read whole",
}


class LLMSettingError(ValueError):
    """A setting is malformed or unsafe; the message names the setting (one line, no secret)."""


class LLMConfig(BaseModel):
    """Everything that decides how an LLM is called, and nothing secret."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    # how messages name these settings ("judge setting 'timeout' ..."), and the prefix of environment variables
    # that configure them (None: the environment is not consulted)
    role: ClassVar[str] = "LLM"
    env_prefix: ClassVar[str | None] = None

    backend: str  # "openai" (any OpenAI-compatible endpoint), "hf" (local transformers) or "none"
    model: str | None = None  # model name sent to the endpoint, or a folder / Hub id for "hf"
    base_url: str | None = None  # e.g. http://localhost:8000/v1 (".../chat/completions" is appended)
    concurrency: int = 32  # requests in flight at once (hundreds are fine for a vLLM-served model)
    timeout: float = 120.0  # seconds for one HTTP attempt
    max_retries: int = 6  # retries after the first attempt (429, 5xx, timeouts, dropped connections)
    retry_wait_initial: float = 1.0  # backoff: wait up to initial * 2**(n-1) s (full jitter) ...
    retry_wait_max: float = 60.0  # ... and never longer than this, a server's Retry-After included
    temperature: float = 0.0
    top_p: float | None = None  # sent only when set (the server's default otherwise)
    max_tokens: int = 64
    seed: int | None = None  # sent only when set: servers that honour it sample reproducibly
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into each request's JSON body
    cache: bool = True
    cache_path: str | None = None  # default: <culturesafe cache dir>/judge.sqlite
    batch_size: int = 8  # "hf": prompts per forward pass
    device: str | None = None  # "hf": default cuda if available, else cpu
    progress: bool = True
    # usage and cost: prices per million prompt ("input") and completion ("output") tokens -> a cost estimate
    price_per_million: dict[str, Any] = Field(default_factory=dict)
    # "openai-batch": the OpenAI Batch API (upload, create, poll with back-off, download)
    batch_completion_window: str = "24h"
    batch_poll_initial: float = 5.0  # seconds before the first poll; doubles after each ...
    batch_poll_max: float = 300.0  # ... up to this
    batch_max_wait: float | None = None  # give up waiting (the batch id stays for the next run); None: wait
    batch_max_submissions: int = 3  # an expired or failed batch re-submits what is missing, up to this often
    batch_max_lines: int = 50_000  # requests per batch file (the OpenAI limit); more make several batches
    batch_max_bytes: int = 190_000_000  # bytes per batch file (OpenAI accepts up to 200 MB)

    def __init__(self, **values: Any) -> None:
        """Validate; pydantic's multi-line error becomes the one-line :class:`LLMSettingError` of its first problem."""
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise LLMSettingError(type(self)._message(err, values)) from None

    @classmethod
    def _message(cls, err: ValidationError, values: Mapping[str, Any]) -> str:
        problems = err.errors()
        unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden")
        if unknown:
            secrets = find_secrets({k: values[k] for k in unknown}, cls.role)
            if secrets:
                return _secret_message(secrets)
            return f"unknown {cls.role} setting(s) {unknown}; known: {sorted(cls.model_fields)}"
        first = problems[0]
        if first["type"] == "value_error":  # a check of _check_values: its own message
            return str(first["ctx"]["error"])
        name = str(first["loc"][0]) if first["loc"] else "?"
        if name not in cls.model_fields:
            return f"{cls.role} setting: {first['msg']}"
        value, (base, optional) = values.get(name), _expected(cls.model_fields[name].annotation)
        if first["type"] == "finite_number":
            return f"{cls.role} setting {name!r} must be a finite number, not {value!r}"
        if find_secrets(value, name):
            return f"{cls.role} setting {name!r} must be {base}, not a {type(value).__name__}"
        shown = "a JSON object" if base == "dict" else base
        return f"{cls.role} setting {name!r} must be {shown}{' or null' if optional else ''}, not {value!r}"

    @model_validator(mode="after")
    def _check_values(self) -> LLMConfig:
        role, env = self.role, self.env_prefix
        if self.backend not in BACKENDS:
            raise ValueError(f"{role} backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.backend in (*HTTP_BACKENDS, "hf") and not self.model:
            hint = f" or {env}MODEL" if env else ""
            raise ValueError(f"the {self.backend!r} {role} needs a model ({role}.model{hint})")
        if self.backend in HTTP_BACKENDS and not self.base_url:
            hint = f" or {env}BASE_URL" if env else ""
            raise ValueError(
                f"the {self.backend!r} {role} needs base_url ({role}.base_url{hint}), e.g. "
                "http://localhost:8000/v1 for vLLM or https://api.openai.com/v1: it is never guessed, so a "
                "key meant for one provider is not sent to another"
            )
        if self.backend == "hf" and self.model and self.model.startswith(("/", "./", "../", "~")):
            if not Path(self.model).expanduser().exists():
                raise ValueError(f"the 'hf' {role} model folder {self.model!r} does not exist ({role}.model)")
        if self.concurrency < 1 or self.batch_size < 1 or self.max_retries < 0:
            raise ValueError(f"{role} concurrency and batch_size must be >= 1 and max_retries >= 0")
        for name in ("timeout", "max_tokens"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{role} setting {name!r} must be > 0, not {getattr(self, name)!r}")
        for name in ("retry_wait_initial", "retry_wait_max", "temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{role} setting {name!r} must be >= 0, not {getattr(self, name)!r}")
        if self.base_url is not None:
            _check_url(self.base_url, role)
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"{role} setting 'top_p' must be in (0, 1], not {self.top_p!r}")
        reserved = [k for k in RESERVED_BODY_KEYS if k in self.extra_body]
        reserved += [k for k in ("top_p", "seed") if k in self.extra_body and getattr(self, k) is not None]
        if reserved:
            key = reserved[0]
            hint = _RESERVED_HINT.get(key, f"use the {role} setting {key!r}")
            raise ValueError(
                f"{role} setting 'extra_body' may not set {key!r}: it is sent with every request and would change "
                f"the {role} behind the settings that results, caches and judge cards name; {hint}"
            )
        secrets = find_secrets(self.model_dump(), role)  # every string setting, any depth, URLs included
        if secrets:
            raise ValueError(_secret_message(secrets))
        unknown_prices = sorted(set(self.price_per_million) - {"input", "output"})
        if unknown_prices or not all(
            isinstance(v, int | float) and v >= 0 for v in self.price_per_million.values()
        ):  # NaN is not >= 0
            raise ValueError(
                f"price_per_million must be {{'input': x, 'output': y}} with non-negative numbers, "
                f"not {self.price_per_million!r}"
            )
        if self.batch_max_submissions < 1 or self.batch_poll_initial <= 0 or self.batch_poll_max <= 0:
            raise ValueError("batch_max_submissions must be >= 1 and the batch poll intervals > 0")
        if self.batch_max_lines < 1 or self.batch_max_bytes < 1:
            raise ValueError("batch_max_lines and batch_max_bytes must be >= 1")
        return self

    def sampling(self) -> dict[str, Any]:
        """:data:`SAMPLING_FIELDS` as the request and the cache key carry them (``None``: not set, left out)."""
        values = {name: getattr(self, name) for name in SAMPLING_FIELDS}
        return {k: v for k, v in values.items() if v is not None}

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The estimated cost of those tokens under ``price_per_million``; ``None`` when no price is set."""
        if not self.price_per_million:
            return None
        prices = self.price_per_million
        return (prompt_tokens * prices.get("input", 0.0) + completion_tokens * prices.get("output", 0.0)) / 1e6

    @classmethod
    def missing_backend(cls) -> ValueError:
        """The error when no backend is named anywhere (the judge's says how to name one)."""
        return LLMSettingError(f"no {cls.role} backend named: give backend, one of {', '.join(BACKENDS)}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> LLMConfig:
        """Defaults, overlaid by ``<env_prefix><NAME>`` env vars (when the class has a prefix), overlaid by
        ``values`` (``None`` values ignored)."""
        merged = cls.env_values(os.environ if env is None else env)
        merged.update({k: v for k, v in dict(values or {}).items() if v is not None})
        if not merged.get("backend"):
            unknown = sorted(set(merged) - set(cls.model_fields))
            if unknown:  # an unknown (or secret) setting is the first thing to say
                cls(backend="none", **{k: merged[k] for k in unknown})
            raise cls.missing_backend()
        return cls(**merged)

    @classmethod
    def env_values(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """The settings that ``<env_prefix><NAME>`` variables set, each parsed as its field's type."""
        if cls.env_prefix is None:
            return {}
        values: dict[str, Any] = {}
        for name, spec in cls.model_fields.items():
            var = cls.env_prefix + name.upper()
            raw = env.get(var)
            if raw in (None, ""):
                continue
            base, _ = _expected(spec.annotation)
            try:
                values[name] = (
                    json.loads(raw)
                    if base == "dict"
                    else TypeAdapter(spec.annotation).validate_strings(raw)
                    if base != "str"
                    else raw
                )
            except ValidationError as err:
                if base == "bool":
                    raise LLMSettingError(f"{var}={raw!r} is not a boolean (use 1/0, true/false)") from None
                raise LLMSettingError(f"{var}={raw!r}: {err.errors()[0]['msg']}") from None
            except ValueError as err:
                raise LLMSettingError(f"{var}={raw!r}: {err}") from None
        return values

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
            raise LLMSettingError(f"{where} must be a dict, JSON object or backend name, not {type(values).__name__}")
        return cls.from_dict({**(values or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}, env)

    def api_key(self) -> str | None:
        """The key from the environment, read when needed: never stored, logged or cached.

        ``CULTURESAFE_JUDGE_API_KEY`` for any endpoint; ``OPENAI_API_KEY`` only for OpenAI's own host,
        so a key meant for OpenAI never reaches another server. Refused (:class:`LLMSettingError`)
        when it would travel over plain HTTP to a host that is not this machine.
        """
        key = os.environ.get(KEY_ENV) or None
        if key is None and _host(self.base_url) in OPENAI_HOSTS:
            key = os.environ.get(OPENAI_KEY_ENV) or None
        if key is not None and self.base_url and not safe_transport(self.base_url):
            raise LLMSettingError(
                f"refusing to send the API key over plain HTTP to {_host(self.base_url)!r}: use https:// in "
                f"{self.role}.base_url, or unset {KEY_ENV} if that server needs no key"
            )
        return key

    def resolved_cache_path(self) -> Path:
        """The sqlite file: ``cache_path`` if set, else ``judge.sqlite`` in the culturesafe cache dir."""
        if self.cache_path:
            return Path(self.cache_path).expanduser()
        return cache_dir() / CACHE_FILE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for results files (the key is not a field, so it cannot be in here)."""
        return self.model_dump()


def _expected(annotation: Any) -> tuple[str, bool]:
    """A field's type as messages name it (``str``, ``int``, ``float``, ``bool``, ``dict``); may it be None."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    optional = type(None) in args
    base = next(a for a in args if a is not type(None))
    return getattr(typing.get_origin(base) or base, "__name__", str(base)), optional


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
            raise LLMSettingError(
                f"{where} is not valid JSON ({err}): give an object such as {SETTINGS_EXAMPLE}"
            ) from None
        if not isinstance(parsed, dict):
            raise LLMSettingError(f"{where} must be a JSON object, not {type(parsed).__name__}")
        return parsed
    backend, _, model = text.partition(":")
    return {"backend": backend.strip(), **({"model": model.strip()} if model.strip() else {})}


def refuse_metadata_secrets(metadata: Mapping[str, Any]) -> None:
    """Refuse run metadata (``--metadata`` keys and model_args, any depth, URLs included) that looks secret.

    Why: lm-eval writes the merged metadata into every results file. The ``judge`` entry is checked when its
    settings are parsed."""
    secrets = find_secrets({k: v for k, v in metadata.items() if k != "judge"}, "metadata")
    if secrets:
        raise LLMSettingError(
            f"secret-looking metadata {secrets}: lm-eval writes the metadata into its results files; pass keys "
            "only through the environment (CULTURESAFE_JUDGE_API_KEY, HF_TOKEN)"
        )


def _secret_message(paths: list[str]) -> str:
    return (
        f"secret-looking setting(s) {paths}: lm-eval writes the metadata into its results and samples, so "
        f"API keys are read only from the environment ({KEY_ENV}, or {OPENAI_KEY_ENV} for OpenAI)"
    )


def _host(url: str | None) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def safe_transport(url: str) -> bool:
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


def _check_url(url: str, role: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as err:
        raise ValueError(f"{role} setting 'base_url' is not a URL: {err}") from None
    secrets = url_secrets(url, "base_url")
    if secrets:
        raise ValueError(_secret_message(secrets))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{role} setting 'base_url' must be an http:// or https:// URL with a host")
