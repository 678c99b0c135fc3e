"""Every use of :mod:`culturesafe_ext.llm` by the synthesis pipeline, in one module.

Why one module: the LLM package's names are being renamed (judge vocabulary -> LLM vocabulary); the
pipeline's other modules import from here, so a rename is a fix in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from culturesafe_ext.llm import LLMClient, LLMConfig
from culturesafe_ext.llm.prompts import Template, load_template
from culturesafe_ext.llm.settings import parse_settings

__all__ = ["LLMClient", "LLMConfig", "Template", "load_prompt", "make_client"]

BACKENDS = ("openai", "openai-batch", "hf")


def make_client(spec: str, overrides: Mapping[str, Any]) -> LLMClient:
    """The generator client from ``--llm`` (``openai:MODEL``, ``hf:FOLDER`` or a JSON object) and flags."""
    values = parse_settings(spec, "--llm")
    if not isinstance(values, Mapping) or values.get("backend") not in BACKENDS or not values.get("model"):
        raise ValueError(f"--llm {spec.strip()!r}: expected openai:MODEL, openai-batch:MODEL, hf:MODEL or JSON")
    return LLMClient(LLMConfig.from_spec(values, "--llm", overrides=overrides, env={}))


def load_prompt(name: str, version: str = "v1") -> Template:
    """``prompts/<name>.<version>.txt`` of this package; its id ``syn-<name>.<version>`` keys the cache."""
    return load_template(name, version, package=__package__, folder="prompts", prefix="syn-")
