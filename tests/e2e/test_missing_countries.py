"""Issue 28: `lm_eval --tasks adaculturesafe_knowledge` on a dataset lacking some of the group's countries ends in
one line naming them and the command that writes the dataset's own task YAMLs, not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.lm_eval_run import OFFLINE_ENV, child_env
from tasks.test_write_configs import china_only


def test_a_group_over_a_dataset_without_some_countries(tmp_path: Path) -> None:
    folder = china_only(tmp_path)
    command = [sys.executable, "-m", "lm_eval", "run", "--model", "dummy", "--tasks", "adaculturesafe_knowledge"]
    command += ["--metadata", json.dumps({"culturesafe_data": str(folder)}), "--limit", "1"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=child_env(OFFLINE_ENV), cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"culturesafe: the dataset at {str(folder)!r} lacks the countries India, Spain, ")
    assert "culturesafe tasks write-configs adaculturesafe --dataset" in last
