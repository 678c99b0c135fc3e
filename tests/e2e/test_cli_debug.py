"""`culturesafe --debug` in a subprocess shows the traceback (tests/test_cli_errors.py covers the one-line errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_cli_errors import write_safety_run

SENTINEL = "sk-SENTINEL-cli-0b5e7-never-printed"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    run = write_safety_run(tmp_path / "run")
    argv = ["judge", "rejudge", str(run), "--judge", '{"backend": "gpt"}']
    culturesafe = str(Path(sys.executable).parent / "culturesafe")
    quiet = subprocess.run([culturesafe, *argv], capture_output=True, text=True, timeout=120)
    loud = subprocess.run([culturesafe, "--debug", *argv], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr and "--debug" in quiet.stderr
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_the_command_tree_loads_without_torch_or_datasets() -> None:
    """Every `culturesafe` process builds the whole parser first: what it imports there, each command pays
    (torch and datasets cost seconds of CPU; a command imports them when it runs, not to parse its arguments)."""
    code = (
        "import sys; from culturesafe_ext.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas', 'peft') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
