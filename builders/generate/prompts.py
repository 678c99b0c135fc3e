"""Versioned generation prompts (``prompts/<name>.<version>.txt``), read as every prompt is.

A prompt file has a ``[system]`` and a ``[user]`` section; ``{placeholders}`` in the user section are
filled in one pass (a value is never re-scanned, tags inside values are defused). The prompt's id,
``gen-<name>.<version>``, is part of every request's cache key, so editing a prompt means a new
version file, never a silent change. The file reader and template are the LLM client's
(:mod:`culturesafe_ext.llm.prompts`): one way to read and fill a prompt file.
"""

from __future__ import annotations

from culturesafe_ext.llm.prompts import Template, load_template

Prompt = Template


def load_prompt(name: str, version: str = "v1") -> Prompt:
    """Read ``prompts/<name>.<version>.txt`` from the installed package."""
    return load_template(name, version, package=__package__, folder="prompts", prefix="gen-")
