"""hf-grounded: each mode through the real lm_eval CLI."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.lm_eval_run import lm_eval_args, run_lm_eval

TASKS = "adaculturesafe_knowledge_china,adaculturesafe_safety_china"


MODES = {"retrieve": ["--apply_chat_template"], "elicit": [], "cad": []}


def _samples(run: dict, task: str) -> list[dict]:
    files = sorted(Path(run["_dir"]).glob(f"samples_{task}_*.jsonl"))
    return [json.loads(line) for line in files[-1].read_text().splitlines()]


def grounded_run(mode: str, extra: list[str], model: Path, tmp_path: Path) -> tuple[dict, Path]:
    log = tmp_path / "grounding.jsonl"
    model_args = f"grounding={mode},knowledge_max_tokens=6,grounding_log={log}"
    metadata = {"culturesafe_data": "bundled", "judge": {"backend": "none"}}
    args = lm_eval_args(model, TASKS, limit=2, batch_size=4, model_type="hf-grounded", model_args=model_args)
    args += ["--device", "cpu", "--gen_kwargs", "max_gen_toks=6", "--metadata", json.dumps(metadata), *extra]
    return run_lm_eval(args, tmp_path), log


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The three modes' lm_eval runs (started early by conftest's ``lm_eval_pool``)."""

    def job(mode: str, extra: list[str]):
        tmp = tmp_path_factory.mktemp(mode)
        return lambda: grounded_run(mode, extra, tiny_model, tmp)

    return {mode: job(mode, extra) for mode, extra in MODES.items()}


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_end_to_end_through_lm_eval(mode: str, lm_eval_runs: dict[str, Future]) -> None:
    run, log = lm_eval_runs[mode].result()
    assert run["results"]["adaculturesafe_knowledge_china"]["acc,none"] is not None
    assert len(_samples(run, "adaculturesafe_safety_china")) == 2
    info = run["config"]["grounding"]
    assert info["mode"] == mode and info["log"] == str(log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert info["documents"] == 4 and info["empty_knowledge"] == sum(not x["knowledge"] for x in lines)
    # one line per (task, doc): 2 knowledge + 2 safety documents, keyed by lm-eval's doc_hash
    assert sorted((x["task_name"], x["doc_id"]) for x in lines) == sorted(
        (t, i) for t in TASKS.split(",") for i in range(2)
    )
    hashes = {s["doc_hash"] for t in TASKS.split(",") for s in _samples(run, t)}
    assert {x["doc_hash"] for x in lines} == hashes
    if mode in ("retrieve", "cad"):
        assert all(x["knowledge"] for x in lines) and info["empty_knowledge"] == 0
        recall = info["retrieval_recall"]
        assert recall["n_with_gold"] == 4 and recall["hits"] == sum(x["gold_retrieved"] for x in lines)
    else:
        assert all("Do not answer the request yet" in x["elicit_prompt"] for x in lines)
