"""Issue 28: `culturesafe demo --limit -1` ends in one argparse line within seconds, before any model or lm_eval."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def test_demo_refuses_a_negative_limit_before_loading_anything(tmp_path: Path) -> None:
    culturesafe = str(Path(sys.executable).parent / "culturesafe")
    started = time.monotonic()
    done = subprocess.run(
        [culturesafe, "demo", "--limit", "-1", "--output-path", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    last = done.stderr.strip().splitlines()[-1]
    assert last == "culturesafe demo: error: argument --limit: must be a whole number >= 1, got '-1'", done.stderr
    assert "Traceback" not in done.stderr and "lm_eval" not in done.stdout and done.stdout == ""
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 60
