"""Versioned generation prompts (``prompts/<name>.<version>.txt``) and the one way to fill them in.

A prompt file has a ``[system]`` and a ``[user]`` section; ``{placeholders}`` in the user section are
filled in one pass (a value is never re-scanned). The prompt's id, ``<name>.<version>``, is part of
every request's cache key, so editing a prompt means a new version file, never a silent change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_OUR_TAGS = re.compile(r"<(?=\s*/?\s*(?:description|country|location|question|subdomain)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Prompt:
    """One generation prompt: system text and a user template with named placeholders."""

    name: str
    version: str
    system: str
    user: str

    @property
    def id(self) -> str:
        return f"gen-{self.name}.{self.version}"

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_PLACEHOLDER.findall(self.user)))

    def messages(self, **values: object) -> list[dict[str, str]]:
        """System + user chat messages; every placeholder must get a value (no silent blanks)."""
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise ValueError(f"prompt {self.id} needs values for {missing}")
        filled = {k: _OUR_TAGS.sub("\u2039", str(v)) for k, v in values.items()}
        user = _PLACEHOLDER.sub(lambda m: filled.get(m.group(1), m.group(0)), self.user)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@cache
def load_prompt(name: str, version: str = "v1") -> Prompt:
    """Read ``prompts/<name>.<version>.txt`` from the installed package."""
    resource = files(__package__) / "prompts" / f"{name}.{version}.txt"
    if not resource.is_file():
        raise FileNotFoundError(f"no generation prompt {name}.{version}.txt in {__package__}/prompts")
    parts = _SECTION.split(resource.read_text(encoding="utf-8"))
    sections = dict(zip(parts[1::2], (p.strip() for p in parts[2::2]), strict=False))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"generation prompt {name}.{version} must have a [system] and a [user] section")
    return Prompt(name=name, version=version, system=sections["system"], user=sections["user"])
