"""Scripted LLMs for the curation pipelines (``generate descriptions`` and the CulturaX Stage I commands).

Deterministic functions of the chat messages, served by :class:`support.openai_standin.StandIn`:
:func:`describe` decomposes a source text sentence by sentence (each description's evidence is its own sentence,
so the mechanical check passes) and adds one entry whose evidence the text does not hold (it must be rejected);
sentences shared by two sources give the same description twice (a near-duplicate across sources).
"""

from __future__ import annotations

import json
import re


def tag(text: str, name: str) -> str:
    found = re.search(rf"<{name}> (.*?) </{name}>", text, re.DOTALL)
    return found.group(1) if found else ""


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.strip()) > 30]


def describe(messages: list[dict]) -> str:
    user = messages[1]["content"]
    country, text = tag(user, "COUNTRY"), tag(user, "TEXT")
    if "NOCUSTOMS" in text:
        return "I could not find any customs here, sorry."  # no JSON: retried, then reported
    entries = [
        {
            "custom": " ".join(s.split()[:3]),
            "location": country,
            "description": f"In {country}: {s}",
            "evidence": s,
        }
        for s in sentences(text)[:4]
    ]
    entries.append(
        {
            "custom": "invented",
            "location": country,
            "description": f"In {country} everyone juggles at weddings.",
            "evidence": "Everyone juggles flaming torches at weddings.",
        }  # fmt: skip
    )
    return json.dumps({"descriptions": entries})
