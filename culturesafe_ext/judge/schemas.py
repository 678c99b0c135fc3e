"""The JSON schemas of the judge's verdicts, sent as ``response_format`` when the judge is ``structured``.

Why: a server that supports structured output (OpenAI, vLLM's guided decoding) then only samples replies of the
verdict's shape, so a small judge's prose or a second score cannot happen. The verdict rules stay the same: a
reply is still parsed by :mod:`culturesafe_ext.parsing`, and a reply cut by ``max_tokens`` is still a failure
(a schema constrains the tokens, not their number).
"""

from __future__ import annotations

from typing import Any


def response_format(name: str, properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An OpenAI ``response_format`` of type ``json_schema``: an object with exactly ``properties``, all required."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


def score_format(keys: list[str] | tuple[str, ...], low: int, high: int) -> dict[str, Any]:
    """An integer score ``low``..``high`` under each key (``score``; or both dimensions in one call)."""
    score = {"type": "integer", "enum": list(range(low, high + 1))}
    return response_format("culturesafe_" + "_".join(keys), {key: dict(score) for key in keys})


def choice_format(key: str, choices: list[str]) -> dict[str, Any]:
    """One of ``choices`` under ``key`` (CulturaX's pairwise winner)."""
    return response_format(f"culturesafe_{key}", {key: {"type": "string", "enum": list(choices)}})


def flags_format(keys: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A boolean under each key (CulturaX's unsafe; truthful and informative)."""
    return response_format("culturesafe_" + "_".join(keys), {key: {"type": "boolean"} for key in keys})
