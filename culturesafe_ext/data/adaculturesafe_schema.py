"""The AdaCultureSafe dataset as published by this project: row features, names and config ids.

Builders write rows with these features; tasks and analysis read them. Country names, ids and task
names always come from the data (the release's file names), never from a hand-written list.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Features

# The Hub dataset the tasks read by default. One constant, one place.
DEFAULT_HUB_ID = "culturesafe/adaculturesafe"
SPLIT = "test"
ALL = "all"
KINDS = ("knowledge", "safety")
_COMMON = (
    "id", "description_id", "country", "country_native", "iso_alpha2", "iso_alpha3", "iso_numeric", "location",
    "source", "source_key", "description",
)  # fmt: skip


def features(kind: str) -> Features:
    """The column types of a kind's configs (``datasets`` imported here, so the CLI's parser never loads it)."""
    from datasets import Features, Sequence, Value

    common = {name: Value("string") for name in _COMMON}
    if kind == "knowledge":
        own = {
            "question": Value("string"),
            "options": Sequence(Value("string")),
            "gold_index": Value("int32"),
            "gold_letter": Value("string"),
        }
    elif kind == "safety":
        own = {"scene": Value("string"), "requirement": Value("string"), "query": Value("string")}
    else:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(KINDS)}")
    return Features({**common, **own})


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
