"""Gold positions made uniform: the released data has B or C as gold for 94.6% of its questions.

Each question gets a target position from a seeded, shuffled list that holds every position equally
often (counts differ by at most one); its options are then put in a seeded random order with the gold
option at that target. The same seed and the same items give the same dataset.
"""

from __future__ import annotations

import random


def balance_gold(items: list[dict], seed: int, n_options: int = 4) -> list[dict]:
    """Copies of ``items`` (``options``, ``gold_index``) with gold positions spread evenly."""
    rng = random.Random(seed)
    targets = [i % n_options for i in range(len(items))]
    rng.shuffle(targets)
    out = []
    for item, target in zip(items, targets, strict=True):
        if len(item["options"]) != n_options:
            raise ValueError(f"item {item.get('id')!r} has {len(item['options'])} options, expected {n_options}")
        gold = item["options"][item["gold_index"]]
        others = [o for i, o in enumerate(item["options"]) if i != item["gold_index"]]
        rng.shuffle(others)
        others.insert(target, gold)
        out.append({**item, "options": others, "gold_index": target})
    return out
