"""``culturesafe build culturax`` in a subprocess: a malformed CSV fails at its row and column, a good one builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from builders.test_culturax import GOOD, HEADER, _write


def test_cli_build_fails_with_row_and_column(tmp_path: Path) -> None:
    bad = _write(tmp_path / "c.csv", [HEADER, GOOD[:3] + ["", "a", "b", "", ""]])
    cli = Path(sys.executable).parent / "culturesafe"
    done = subprocess.run(
        [str(cli), "build", "culturax", "--source", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "record 'row 2': field 'helpful_response': empty" in done.stderr
    ok = _write(tmp_path / "d.csv", [HEADER, GOOD])
    done = subprocess.run(
        [
            str(cli),
            "build",
            "culturax",
            "--source",
            str(ok),
            "--out",
            str(tmp_path / "o"),
            "--push",
            "me/cx",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "1 distinct questions" in done.stdout and "would upload" in done.stdout and "build_report.json" in done.stdout
    )
