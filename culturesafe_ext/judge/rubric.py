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
from importlib.resources import files

from culturesafe_ext.judge.items import DIMENSIONS

COMBINED = "both"
FIELDS = ("custom", "location", "query", "response")
_TAGS = re.compile(r"<(?=\s*/?\s*(?:custom|location|query|response|definition)\b)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


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


def neutralise(text: str) -> str:
    """Defuse our delimiter tags inside untrusted text (``</RESPONSE>`` -> ``‹/RESPONSE>``)."""
    return _TAGS.sub("\u2039", text)


@cache
def load_rubric(name: str, version: str = "v1") -> Rubric:
    """Read ``rubrics/<name>.<version>.txt`` from the installed package."""
    if name not in (*DIMENSIONS, COMBINED):
        raise ValueError(f"no rubric {name!r}: choose one of {(*DIMENSIONS, COMBINED)}")
    sections = read_prompt_file("culturesafe_ext.judge", "rubrics", name, version)
    if not all(f"{{{f}}}" in sections["user"] for f in FIELDS):
        raise ValueError(f"rubric {name}.{version}: the [user] section must use {FIELDS}")
    return Rubric(name=name, version=version, system=sections["system"], user=sections["user"])


# --------------------------------------------------------------------------------------------------
# Free-form prompt templates (pairwise verdicts, labels): any ``{field}`` placeholders, same file format
# --------------------------------------------------------------------------------------------------

_ANY_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Template:
    """A versioned prompt with its own fields, for ``Judge.request(..., mode="generate")``.

    Every field value is untrusted; each sits in an ``<FIELD> ... </FIELD>`` block, and any of the
    template's tags inside a value is neutralised, as :func:`neutralise` does for the rubrics.
    """

    name: str
    version: str
    system: str
    user: str
    fields: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.name}.{self.version}"

    def messages(self, **values: object) -> list[dict[str, str]]:
        """System + user messages; every placeholder must get a value (no silent blanks)."""
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise ValueError(f"template {self.id} needs values for {missing}")
        tags = re.compile(r"<(?=\s*/?\s*(?:" + "|".join(self.fields) + r")\b)", re.IGNORECASE)
        clean = {k: tags.sub("\u2039", neutralise(str(v if v is not None else ""))) for k, v in values.items()}
        user = _ANY_PLACEHOLDER.sub(lambda m: clean.get(m.group(1), m.group(0)), self.user)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def read_prompt_file(package: str, folder: str, name: str, version: str) -> dict[str, str]:
    """The ``[system]`` and ``[user]`` sections of ``<package>/<folder>/<name>.<version>.txt``.

    The one reader of prompt files: judge rubrics, judge templates and generation prompts.
    """
    resource = files(package) / folder / f"{name}.{version}.txt"
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt file {name}.{version}.txt in {package}/{folder}")
    parts = _SECTION.split(resource.read_text(encoding="utf-8"))
    sections = dict(zip(parts[1::2], (p.strip() for p in parts[2::2]), strict=False))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name}.{version} must have a [system] and a [user] section")
    return sections


@cache
def load_template(
    name: str, version: str = "v1", package: str = "culturesafe_ext.judge", folder: str = "rubrics", prefix: str = ""
) -> Template:
    """A prompt template with any ``{field}`` placeholders; its id is ``<prefix><name>.<version>``."""
    sections = read_prompt_file(package, folder, name, version)
    fields = tuple(dict.fromkeys(_ANY_PLACEHOLDER.findall(sections["user"])))
    return Template(
        name=f"{prefix}{name}", version=version, system=sections["system"], user=sections["user"], fields=fields
    )
