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

from culturesafe_ext.llm.settings import LLMConfig, LLMSettingError, parse_settings

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

    @model_validator(mode="after")
    def _check_judge(self) -> JudgeConfig:
        if self.backend == "hf" and self.both_dimensions_in_one_call:
            raise ValueError("both_dimensions_in_one_call needs a generating judge (openai backend), not 'hf'")
        return self

    def params_identity(self) -> dict[str, Any]:
        """What, beside backend and model, makes two judges answer differently (as in their cache keys)."""
        return {
            **super().params_identity(),
            "rubric_version": self.rubric_version,
            "both_dimensions_in_one_call": self.both_dimensions_in_one_call,
        }

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
        order[at:at] = ["rubric_version", "both_dimensions_in_one_call"]
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
            identity = json.dumps([judge.backend, judge.model, judge.params_identity()], sort_keys=True)
            if identity in seen:
                raise LLMSettingError(
                    f"judges {seen[identity]} and {i} of the panel are the same judge ({judge.backend}:{judge.model} "
                    "with the same sampling settings): they would share every cached reply"
                )
            seen[identity] = i

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> PanelConfig:
        """The panel a ``judges`` list names, each entry over the shared settings beside it."""
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


IDENTITY_KEYS = ("backend", "model", "rubric_version", "temperature")  # who answered: what reports and cards name
# ... and what else changes a verdict: two judges agree on all of these or are not the same judge (calibration cards)
VERDICT_KEYS = (*IDENTITY_KEYS, "both_dimensions_in_one_call")


def identity(settings: Mapping[str, Any], keys: tuple[str, ...] = VERDICT_KEYS) -> dict[str, Any]:
    """``keys`` of logged settings, a missing one read as its default (settings logged before it existed)."""
    defaults = {
        name: None if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in JudgeConfig.model_fields.items()
    }
    return {k: settings.get(k, defaults.get(k)) for k in keys}
