"""Versioned judge prompts (``rubrics/<name>.<version>.txt``) and the one way to fill them in.

The judged response is untrusted text written by the model under test. It sits in a
``<RESPONSE> ... </RESPONSE>`` block, and every tag of ours that appears inside any field is
neutralised (its ``<`` becomes ``‹``), so a response cannot close its block early and pose as the
rest of the prompt. The rubric's real ending comes after the block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from culturesafe_ext.judge.items import DIMENSIONS
from culturesafe_ext.llm.prompts import neutralise, read_prompt_file

__all__ = ["COMBINED", "FIELDS", "Rubric", "load_rubric"]

COMBINED = "both"
FIELDS = ("custom", "location", "query", "response")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")


@dataclass(frozen=True)
class Rubric:
    """One prompt: a system part and a user template, and the JSON keys its answer must hold."""

    name: str
    version: str
    system: str
    user: str

    @property
    def id(self) -> str:
        return f"{self.name}.{self.version}"

    @property
    def keys(self) -> tuple[str, ...]:
        return DIMENSIONS if self.name == COMBINED else ("score",)

    def messages(self, custom: str, location: str, query: str, response: str) -> list[dict[str, str]]:
        """The chat messages for one judgement (system + user, as the paper's judge gets them)."""
        values = {k: neutralise(str(v or "")) for k, v in zip(FIELDS, (custom, location, query, response), strict=True)}
        user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)  # one pass: values never re-scanned
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@cache
def load_rubric(name: str, version: str = "v1") -> Rubric:
    """Read ``rubrics/<name>.<version>.txt`` from the installed package."""
    if name not in (*DIMENSIONS, COMBINED):
        raise ValueError(f"no rubric {name!r}: choose one of {(*DIMENSIONS, COMBINED)}")
    sections = read_prompt_file("culturesafe_ext.judge", "rubrics", name, version)
    if not all(f"{{{f}}}" in sections["user"] for f in FIELDS):
        raise ValueError(f"rubric {name}.{version}: the [user] section must use {FIELDS}")
    return Rubric(name=name, version=version, system=sections["system"], user=sections["user"])
