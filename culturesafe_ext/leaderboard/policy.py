"""What a submission must satisfy beyond the fixed checks: ``leaderboard validate``'s options as one value.

Imports nothing of ours, so the command tree takes its defaults from here without loading the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_JUDGE_FAILURE_RATE = 0.05  # default of --max-judge-failure-rate: 1 failed judgement in 20 at most


@dataclass(frozen=True)
class Policy:
    groups: tuple[str, ...] = ("adaculturesafe",)
    allow_bundled: bool = False
    max_judge_failure_rate: float = MAX_JUDGE_FAILURE_RATE
    judge_cards: tuple[Path, ...] = ()
    min_judge_alpha: float | None = None
    spot_check: int = 0
    seed: int = 0
    spot_check_tolerance: float = 1.0
