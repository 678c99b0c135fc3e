"""hf-probe through the real lm_eval CLI, then ``culturesafe probe compare`` on its statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.lm_eval_run import OFFLINE_ENV, culturesafe, lm_eval_args, run_lm_eval

KNOWLEDGE = ["adaculturesafe_knowledge_china", "adaculturesafe_knowledge_gen_china"]


PROBED = [*KNOWLEDGE, "adaculturesafe_safety_china"]


def test_hf_probe_resolves_and_hf_still_does() -> None:
    code = "from lm_eval.api.registry import get_model as m; print(m('hf-probe').__name__, m('hf').__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **OFFLINE_ENV},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ProbeHFLM", "HFLM"]


def probe_then_compare(model: Path, tmp_path: Path) -> tuple[dict, subprocess.CompletedProcess, Path]:
    """hf-probe through lm_eval, then ``culturesafe probe compare`` on the statistics it wrote."""
    metadata = {"culturesafe_data": "bundled", "judge": {"backend": "none"}}
    probe = {"model_type": "hf-probe", "model_args": "probe_topk=4", "log_samples": False}
    args = lm_eval_args(model, PROBED, metadata, limit=4, batch_size=2, max_gen_toks=4, **probe)
    run = run_lm_eval(args, tmp_path)
    folder = Path(run["_dir"]) / "probe_stats"  # beside the results file
    out = tmp_path / "cmp"
    done = culturesafe(
        "probe",
        "compare",
        "knowledge=" + ",".join(str(folder / f"{t}.npz") for t in KNOWLEDGE),
        f"safety={folder / 'adaculturesafe_safety_china.npz'}",
        "--permutations",
        "50",
        "--out",
        out,
        timeout=300,
    )
    return run, done, out


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The module's one run (started early by conftest's ``lm_eval_pool``)."""
    tmp = tmp_path_factory.mktemp("probe")
    return {"probe": lambda: probe_then_compare(tiny_model, tmp)}


def test_lm_eval_cli_writes_stats_and_compare_reads_them(lm_eval_runs: dict) -> None:
    """Knowledge (loglikelihood and generative) and safety (judge backend none: answers generated, not
    judged; the probe reads the prompts) in one lm_eval run, then compare knowledge against safety."""
    tasks = PROBED
    run, done, out = lm_eval_runs["probe"].result()
    assert set(tasks) <= set(run["results"])
    folder = Path(run["_dir"]) / "probe_stats"  # beside the results file
    for task in tasks:
        meta = json.loads((folder / f"{task}.json").read_text())
        assert (meta["n_docs"], meta["k"], meta["width"], meta["tokens"]) == (4, 4, 64, "prompt")
        assert len(meta["layers"]) == 2 and meta["n_tokens"] > 0
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "probe_compare.json").read_text())
    assert report["groups"]["knowledge"]["n_docs"] == 8 and report["groups"]["safety"]["n_docs"] == 4
    [pair] = report["comparisons"]
    assert (pair["a"], pair["b"], len(pair["layers"])) == ("knowledge", "safety", 2)
    assert all((out / figure["file"]).stat().st_size > 1000 for figure in report["figures"])
