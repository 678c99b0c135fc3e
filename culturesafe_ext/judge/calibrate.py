"""Judge calibration against people: card reading and checking (the round trip is added below)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_SCHEMA = "culturesafe.judge_card"
CARD_VERSION = 1
IDENTITY = ("backend", "model", "rubric_version", "both_dimensions_in_one_call", "temperature")


def identity(settings: dict[str, Any]) -> dict[str, Any]:
    """What makes two judges the same judge (the settings that change a verdict, not where it is served)."""
    defaults = {"rubric_version": "v1", "both_dimensions_in_one_call": False, "temperature": 0.0}
    return {k: settings.get(k, defaults.get(k)) for k in IDENTITY}


def read_card(path: Path) -> dict[str, Any]:
    """A judge card; a file that is not one is an error naming the file and field."""
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable judge card ({err})") from None
    if not isinstance(card, dict) or card.get("schema") != CARD_SCHEMA:
        raise ValueError(f"{path}: field 'schema' is not {CARD_SCHEMA!r}: not a judge card")
    for field in ("judge", "figures", "n"):
        if field not in card:
            raise ValueError(f"{path}: field {field!r} missing from the judge card")
    return card


def card_alphas(card: dict[str, Any]) -> dict[str, float | None]:
    """dimension -> the pooled Krippendorff's alpha (judge vs people) on a card."""
    out = {}
    for dimension, scopes in card["figures"].items():
        value = (scopes.get("pooled", {}).get("krippendorff_alpha") or {}).get("value")
        out[dimension] = value
    return out


def check_cards(where: str, judges: list[dict], card_paths: tuple[Path, ...] | list[Path], min_alpha: float | None):
    """Findings for a submission's judges: flag one without a card; refuse alpha below ``min_alpha``."""
    from culturesafe_ext.analysis.validate import Refusal

    out = []
    cards = []
    for path in card_paths:
        try:
            cards.append((path, read_card(path)))
        except ValueError as err:
            out.append(Refusal(str(path), str(err)))
    for settings in judges:
        name = f"{settings.get('backend')}:{settings.get('model')} (rubric {settings.get('rubric_version')})"
        mine = [(p, c) for p, c in cards if identity(c["judge"]) == identity(settings)]
        if not mine:
            out.append(
                Refusal(
                    where,
                    f"judge not calibrated: no judge card for {name} "
                    "(make one with 'culturesafe judge calibrate sample|report', pass it with --judge-card)",
                    fatal=min_alpha is not None,
                )
            )
            continue
        path, card = mine[-1]
        if min_alpha is None:
            continue
        for dimension, alpha in card_alphas(card).items():
            if alpha is None or not alpha >= min_alpha:
                out.append(
                    Refusal(
                        str(path),
                        f"judge {name}: Krippendorff's alpha with people for {dimension} (pooled, n={card['n']}) "
                        f"is {alpha}, below --min-judge-alpha {min_alpha:g}",
                    )
                )
    return out
