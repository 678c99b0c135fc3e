"""The real lm_eval CLI scores only the held-out descriptions of a split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data.test_splits import bundled_rows
from support.lm_eval_run import lm_eval_args, run_lm_eval

from culturesafe_ext.data import splits


def heldout_run(model: Path, tmp_path: Path) -> tuple[dict, splits.DescriptionSplit]:
    rows = [r for r in bundled_rows() if r["country"] == "China"]
    split = splits.split_descriptions(rows, 0.5, seed=1)
    split_file = split.save(tmp_path / "split.json")
    metadata = {"culturesafe_data": "bundled", "culturesafe_split": str(split_file)}
    return run_lm_eval(lm_eval_args(model, "adaculturesafe_knowledge_china", metadata), tmp_path), split


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The module's one run (started early by conftest's ``lm_eval_pool``)."""
    tmp = tmp_path_factory.mktemp("heldout")
    return {"heldout": lambda: heldout_run(tiny_model, tmp)}


def test_lm_eval_scores_only_the_heldout_descriptions(lm_eval_runs: dict) -> None:
    run, split = lm_eval_runs["heldout"].result()
    [samples] = Path(run["_dir"]).glob("samples_adaculturesafe_knowledge_china_*.jsonl")
    docs = [json.loads(line)["doc"] for line in samples.read_text().splitlines()]
    assert {d["description_id"] for d in docs} == set(split.heldout)
    assert run["n-samples"]["adaculturesafe_knowledge_china"]["effective"] == len(docs) == 5
