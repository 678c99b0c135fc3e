"""Near-duplicate removal for generated items, through the project's one SimHash search.

Removed items are returned with the kept item each one duplicated (its twin) and their Hamming
distance, so they are listed in the reports, never just gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from culturesafe_ext.near_duplicates import DedupResult, deduplicate


def remove_near_duplicates(
    candidates: list[dict], text_of: Callable[[dict], str], threshold: int
) -> tuple[list[dict], list[dict], DedupResult | None]:
    """(kept candidates, removed ones with twin, the full result) -- first wins, in input order."""
    if not candidates:
        return [], [], None
    result = deduplicate([c["id"] for c in candidates], [text_of(c) for c in candidates], threshold)
    removed = [
        {
            **asdict(r),
            "kind": candidates[r.index]["kind"],
            "text": text_of(candidates[r.index]),
            "twin_text": text_of(candidates[r.twin_index]),
        }
        for r in result.removed
    ]
    return [candidates[i] for i in result.kept], removed, result
