"""The judge's settings: the LLM settings (:class:`~culturesafe_ext.llm.settings.LLMConfig`) plus the rubric
version and the one-call-for-both-dimensions switch, read from lm-eval ``--metadata '{"judge": {...}}'`` over
``CULTURESAFE_JUDGE_*`` environment variables; several judges as a :class:`PanelConfig`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import model_validator

from culturesafe_ext.llm.secrets import find_secrets
from culturesafe_ext.llm.settings import SAMPLING_FIELDS, LLMConfig, LLMSettingError, parse_settings

ENV_PREFIX = "CULTURESAFE_JUDGE_"
METADATA_JUDGE = "metadata 'judge'"
PANEL_KEYS = ("judges", "panel_aggregate")
PANEL_AGGREGATES = ("mean", "median")
MAX_PANEL = 5

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


class JudgeConfig(LLMConfig):
    """One judge: how its LLM is called, and which rubric it scores with."""

    role: ClassVar[str] = "judge"
    env_prefix: ClassVar[str | None] = ENV_PREFIX

    rubric_version: str = "v1"  # rubrics/<dimension>.<version>.txt
    both_dimensions_in_one_call: bool = False  # one call returns respectfulness and awareness
    structured: bool = False  # send the verdict's JSON schema as response_format (docs/judge.md)

    @model_validator(mode="after")
    def _check_judge(self) -> JudgeConfig:
        for name in ("both_dimensions_in_one_call", "structured"):
            if self.backend == "hf" and getattr(self, name):
                raise ValueError(f"{name} needs a generating judge (openai backend), not 'hf'")
        return self

    @classmethod
    def missing_backend(cls) -> ValueError:
        return JudgeNotConfiguredError(HOW_TO_CONFIGURE)

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> JudgeConfig:
        """The config from lm-eval's merged metadata; its ``judge`` entry: a dict, JSON or a backend name."""
        return cls.from_spec((metadata or {}).get("judge"), METADATA_JUDGE, env=env)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, in the order results files have always had (the judge's fields after ``extra_body``)."""
        values = self.model_dump()
        order = list(LLMConfig.model_fields)
        at = order.index("extra_body") + 1
        order[at:at] = ["rubric_version", "both_dimensions_in_one_call", "structured"]
        return {k: values[k] for k in order}


@dataclass(frozen=True)
class PanelConfig:
    """Several judges that each score every answer; the task's score is their mean (or median).

    Written as ``{"judges": [{...}, {...}], "panel_aggregate": "mean", <shared settings>}``: each entry
    overlays the shared settings (e.g. one ``cache_path``), so every judge is a full :class:`JudgeConfig`.
    """

    judges: tuple[JudgeConfig, ...]
    aggregate: str = "mean"

    def __post_init__(self) -> None:
        if len(self.judges) < 2:
            raise LLMSettingError(f"a judge panel needs at least two judges, not {len(self.judges)}")
        if len(self.judges) > MAX_PANEL:
            raise LLMSettingError(f"a judge panel has at most {MAX_PANEL} judges, not {len(self.judges)}")
        if self.aggregate not in PANEL_AGGREGATES:
            raise LLMSettingError(f"panel_aggregate {self.aggregate!r} is not one of {PANEL_AGGREGATES}")
        seen: dict[str, int] = {}
        for i, judge in enumerate(self.judges, start=1):  # same identity = same cache entries = one judge
            same = json.dumps(identity(judge.to_dict()), sort_keys=True)
            if same in seen:
                raise LLMSettingError(
                    f"judges {seen[same]} and {i} of the panel are the same judge ({judge.backend}:{judge.model} "
                    "with the same sampling settings): they would share every cached reply"
                )
            seen[same] = i

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> PanelConfig:
        """The panel a ``judges`` list names, each entry over the shared settings beside it."""
        secrets = find_secrets({k: v for k, v in values.items() if k != "judges"}, "judge")
        if secrets:  # the members' own settings are checked as each is built
            raise LLMSettingError(
                f"secret-looking judge panel setting(s) {secrets}: keys come only from the environment"
            )
        entries = values.get("judges")
        if not isinstance(entries, list | tuple) or not all(isinstance(e, Mapping) for e in entries):
            raise LLMSettingError(f"judge setting 'judges' must be a list of judge settings (dicts), not {entries!r}")
        shared = {k: v for k, v in values.items() if k not in PANEL_KEYS}
        judges = []
        for i, entry in enumerate(entries, start=1):
            try:
                judges.append(JudgeConfig.from_dict({**shared, **entry}, env=env))
            except ValueError as err:
                raise LLMSettingError(f"judge {i} of the panel: {err}") from None
        return cls(judges=tuple(judges), aggregate=str(values.get("panel_aggregate") or "mean"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, like :meth:`JudgeConfig.to_dict` (no key in here either)."""
        return {"judges": [j.to_dict() for j in self.judges], "panel_aggregate": self.aggregate}


def is_panel(values: Any) -> bool:
    """Whether judge settings (a dict) name a panel rather than one judge."""
    return isinstance(values, Mapping) and "judges" in values


def judge_or_panel(value: Any, env: Mapping[str, str] | None = None) -> JudgeConfig | PanelConfig:
    """The metadata's ``judge`` entry (a dict, JSON or a backend name) as one judge or a panel."""
    value = parse_settings(value, METADATA_JUDGE)
    if is_panel(value):
        return PanelConfig.from_dict(value, env=env)
    return JudgeConfig.from_spec(value, METADATA_JUDGE, env=env)  # type: ignore[return-value]


IDENTITY_KEYS = ("backend", "model", "rubric_version", "temperature")  # who answered: the name reports show
# THE judge's identity: every setting that changes what the judge is asked or how it samples. Caches (through the
# sampling fields and the prompt), panels, judge cards, validate and the reports all compare this, nothing else.
JUDGE_FIELDS = ("rubric_version", "both_dimensions_in_one_call", "structured")
IDENTITY_FIELDS = ("backend", "model", *SAMPLING_FIELDS, *JUDGE_FIELDS)
# ... and the settings that do not change a verdict: where and how fast it is asked, and where replies are kept
OPERATIONAL_FIELDS = (
    "base_url", "concurrency", "timeout", "max_retries", "retry_wait_initial", "retry_wait_max", "cache",
    "cache_path", "batch_size", "device", "progress", "price_per_million", "batch_completion_window",
    "batch_poll_initial", "batch_poll_max", "batch_max_wait", "batch_max_submissions", "batch_max_lines",
    "batch_max_bytes",
)  # fmt: skip


def identity(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What the judge is, from its logged settings (one judge, or a panel: its members' identities and aggregate).

    A field missing from the settings reads as its default (settings logged before it existed); a field unknown
    to :data:`IDENTITY_FIELDS` and :data:`OPERATIONAL_FIELDS` is kept, so nothing unclassified is ignored."""
    if isinstance(settings.get("judges"), list | tuple):
        return {
            "judges": [identity(m) if isinstance(m, Mapping) else m for m in settings["judges"]],
            "panel_aggregate": settings.get("panel_aggregate", "mean"),
        }
    defaults = {
        name: None if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in JudgeConfig.model_fields.items()
    }
    known = set(IDENTITY_FIELDS) | set(OPERATIONAL_FIELDS)
    out = {k: settings.get(k, defaults.get(k)) for k in IDENTITY_FIELDS}
    out.update({k: v for k, v in settings.items() if k not in known})
    return out
