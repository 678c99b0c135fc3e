"""What every leaderboard check returns: a finding naming the file and the reason (a leaf module)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """One finding: a refusal, or (``fatal=False``) a flag that does not refuse on its own."""

    file: str
    reason: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"
