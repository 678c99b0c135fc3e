"""The CulturaX group through the real lm_eval CLI, judged by the stand-in judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lm_eval_run import lm_eval_args, run_lm_eval
from support.openai_standin import Fault, StandIn
from tasks.test_culturax import hhh_responder


def group_run(model: Path, tmp_path: Path) -> tuple[dict, int]:
    """The culturax group through lm_eval, judged by a stand-in that sometimes answers garbage."""
    with StandIn(responder=hhh_responder, faults=[Fault("garbage", rate=0.1)]) as server:
        judge = {
            "backend": "openai",
            "model": "standin",
            "base_url": server.base_url,
            "max_retries": 0,
            "cache_path": str(tmp_path / "judge.sqlite"),
        }
        meta = {"culturax_data": "bundled", "judge": judge}
        run = run_lm_eval(lm_eval_args(model, "culturax", meta, limit=1, max_gen_toks=6), tmp_path)
        return run, server.faults_served.get("garbage", 0)


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The module's one run (started early by conftest's ``lm_eval_pool``)."""
    tmp = tmp_path_factory.mktemp("culturax_group")
    return {"group": lambda: group_run(tiny_model, tmp)}


def test_lm_eval_group_run_with_the_standin_judge(lm_eval_runs: dict) -> None:
    run, served = lm_eval_runs["group"].result()
    results = run["results"]
    domain_tasks = [t for t in results if t.startswith("culturax_")]
    assert len(domain_tasks) == 8
    failures = sum(results[t]["judge_failures,hhh"] for t in domain_tasks)
    logged_errors = 0
    for t in domain_tasks:
        [path] = Path(run["_dir"]).glob(f"samples_{t}_*.jsonl")
        for line in path.read_text().splitlines():
            for entry in map(json.loads, json.loads(line)["filtered_resps"][0]):
                verdicts = entry["wr"] + [entry["ss"], entry["ti"]]
                logged_errors += sum(v["error"] is not None for v in verdicts)
    assert failures == logged_errors and (failures > 0) == (served > 0)  # counted and kept, never dropped
    group = results["culturax"]
    for metric in ("wr", "ss", "ti", "avg"):
        assert f"{metric},hhh" in group
    assert group["ss,hhh"] == 0.0 and group["informative,hhh"] == 0.0
    task = "culturax_performance_and_celebration"
    [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
    [row] = [json.loads(line) for line in path.read_text().splitlines()]
    assert row["doc"]["subdomain"] and row["doc"]["domain"] == "Performance and Celebration"
    assert len(row["resps"][0]) == 3 and len(row["filtered_resps"][0]) == 3  # all three repeats judged
    assert {"wr", "ss", "ti", "truthful", "informative", "judge_failures"} <= set(row)
    assert run["configs"][task]["repeats"] == 3
