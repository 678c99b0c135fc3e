"""The AdaCultureSafe dataset as published by this project: row features, names and config ids.

Builders write rows with these features; tasks and analysis read them. Country names, ids and task
names always come from the data (the release's file names), never from a hand-written list.
"""

from __future__ import annotations

import re
import unicodedata

from datasets import Features, Sequence, Value

# The Hub dataset the tasks read by default. One constant, one place.
DEFAULT_HUB_ID = "culturesafe/adaculturesafe"
SPLIT = "test"
ALL = "all"

_COMMON = {
    "id": Value("string"),
    "description_id": Value("string"),
    "country": Value("string"),
    "country_native": Value("string"),
    "iso_alpha2": Value("string"),
    "iso_alpha3": Value("string"),
    "iso_numeric": Value("string"),
    "location": Value("string"),
    "source": Value("string"),
    "source_key": Value("string"),
    "description": Value("string"),
}

KNOWLEDGE_FEATURES = Features(
    {
        **_COMMON,
        "question": Value("string"),
        "options": Sequence(Value("string")),
        "gold_index": Value("int32"),
        "gold_letter": Value("string"),
    }
)

SAFETY_FEATURES = Features(
    {
        **_COMMON,
        "scene": Value("string"),
        "requirement": Value("string"),
        "query": Value("string"),
    }
)

KINDS = {"knowledge": KNOWLEDGE_FEATURES, "safety": SAFETY_FEATURES}


def slug(name: str) -> str:
    """Lower snake case ASCII for task and config names: "Viet Nam" -> "viet_nam", "Côte d'Ivoire" ->
    "cote_d_ivoire". Names without any ASCII letter fall back to their code points, never to ""."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    return out or "_".join(f"u{ord(ch):04x}" for ch in name if not ch.isspace())


def config_name(kind: str, country: str = ALL) -> str:
    """Hub config id: ``knowledge`` / ``safety`` for all countries, ``knowledge_viet_nam`` for one."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(KINDS)}")
    return kind if country == ALL else f"{kind}_{slug(country)}"


def option_letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def safety_query(scene: str, requirement: str) -> str:
    """The user turn sent to the model, exactly as the paper builds it."""
    return f"{scene} {requirement}"
