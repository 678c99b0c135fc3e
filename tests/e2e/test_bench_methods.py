"""CI smoke test of benchmarks/bench_methods.py: every method runs on a tiny random model (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.lm_eval_run import child_env
from support.paths import REPO


def bench(out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "benchmarks" / "bench_methods.py"), "--device", "cpu", "--random-size",
               "tiny", "--limit", "1", "--max-gen-toks", "4", "--repeats", "1", "--threads", "1",
               "--out", str(out)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=600)


def lm_eval_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The benchmark's one process (started early by conftest's ``lm_eval_pool``, like the lm_eval runs)."""
    out = tmp_path_factory.mktemp("bench")
    return {"bench": lambda: (bench(out), out)}


def test_bench_methods_runs_every_method_on_a_tiny_random_model(lm_eval_runs: dict) -> None:
    done, tmp_path = lm_eval_runs["bench"].result()
    assert done.returncode == 0, done.stderr[-3000:]
    [results] = tmp_path.glob("bench_methods-cpu-tiny-*.json")
    rows = {(r["method"], r["kind"]): r for r in json.loads(results.read_text())["rows"]}
    methods = ["hf", "probe-prompt", "probe-generated", "peft", "router-oracle", "router-learned",
               "grounded-retrieve", "grounded-cad"]  # fmt: skip
    assert set(rows) == {(m, k) for m in methods for k in ("loglikelihood", "generate_until")}
    for kind in ("loglikelihood", "generate_until"):
        assert rows[("probe-prompt", kind)]["check"].startswith("vs hf: same")  # outputs identical to hf
        assert rows[("probe-generated", kind)]["check"].startswith("vs hf: same")
        assert rows[("router-oracle", kind)]["check"].startswith("rows routed to china vs peft: same")
        assert "routes equal to oracle" in rows[("router-learned", kind)]["check"]
        assert all(t > 0 for row in rows.values() for t in row["times"])
    assert rows[("probe-prompt", "loglikelihood")]["stats_write_s"] >= 0
    assert (results.with_suffix(".txt")).read_text().count("\n") > 16  # the side-by-side table
