"""The one prompt-file reader and template of the LLM client: ``<name>.<version>.txt`` with ``[system]`` and
``[user]`` sections, filled in with untrusted values that can never pose as the rest of the prompt.

The judge's prompts (:mod:`culturesafe_ext.judge`), CulturaX verdict templates, generation prompts and the
DPO recipe's chosen-answer prompt are all read and filled in here. Every value sits in a ``<FIELD> ... </FIELD>``
block and every tag of ours inside a value is neutralised (its ``<`` becomes ``‹``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

_TAGS = re.compile(r"<(?=\s*/?\s*(?:custom|location|query|response|definition)\b)", re.IGNORECASE)
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_ANY_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def neutralise(text: str) -> str:
    """Defuse our delimiter tags inside untrusted text (``</RESPONSE>`` -> ``‹/RESPONSE>``)."""
    return _TAGS.sub("\u2039", text)


@dataclass(frozen=True)
class Template:
    """A versioned prompt with its own fields, for ``LLMClient.request(..., mode="generate")``.

    Every field value is untrusted; each sits in an ``<FIELD> ... </FIELD>`` block, and any of the
    template's tags inside a value is neutralised, as :func:`neutralise` does for every prompt.
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

    The one reader of prompt files (every prompt of culturesafe).
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
def load_template(name: str, version: str = "v1", *, package: str, folder: str, prefix: str = "") -> Template:
    """A prompt template with any ``{field}`` placeholders; its id is ``<prefix><name>.<version>``."""
    sections = read_prompt_file(package, folder, name, version)
    fields = tuple(dict.fromkeys(_ANY_PLACEHOLDER.findall(sections["user"])))
    return Template(
        name=f"{prefix}{name}", version=version, system=sections["system"], user=sections["user"], fields=fields
    )
