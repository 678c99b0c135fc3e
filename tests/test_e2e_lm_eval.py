"""End to end: the real ``lm_eval`` CLI in a subprocess, against the installed package, no --include_path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_lm_eval

from culturesafe_ext.parsing import parse_choice_letter

pytestmark = pytest.mark.e2e


def samples(run: dict, task: str) -> list[dict]:
    [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_three_scoring_families_on_the_real_release(built_upstream: Path, tiny_model: Path, tmp_path: Path) -> None:
    tasks = "adaculturesafe_knowledge_china,adaculturesafe_knowledge_gen_china,adaculturesafe_knowledge_circular_china"
    run = run_lm_eval(
        [
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_model}",
            "--tasks",
            tasks,
            "--limit",
            "12",
            "--metadata",
            json.dumps({"culturesafe_data": str(built_upstream)}),
            "--log_samples",
            "--batch_size",
            "4",
            "--gen_kwargs",
            "max_gen_toks=8",
        ],
        tmp_path,
    )
    results = run["results"]
    mc = results["adaculturesafe_knowledge_china"]
    assert {"acc,none", "acc_norm,none", "acc_by_description,none"} <= set(mc)
    mc_samples = samples(run, "adaculturesafe_knowledge_china")
    assert len(mc_samples) == 12
    assert mc["acc,none"] == pytest.approx(sum(s["acc"] for s in mc_samples) / 12)

    gen = results["adaculturesafe_knowledge_gen_china"]
    gen_samples = samples(run, "adaculturesafe_knowledge_gen_china")
    rescored = [
        parse_choice_letter(s["resps"][0][0], list("ABCD"[: len(s["doc"]["options"])]), s["doc"]["options"])
        for s in gen_samples
    ]
    assert gen["invalid_rate,none"] == pytest.approx(sum(r is None for r in rescored) / 12)
    assert gen["acc,none"] == pytest.approx(
        sum(r == s["doc"]["gold_letter"] for r, s in zip(rescored, gen_samples, strict=True)) / 12
    )

    circular = results["adaculturesafe_knowledge_circular_china"]
    circ_samples = samples(run, "adaculturesafe_knowledge_circular_china")
    assert [s["doc"]["rotation"] for s in circ_samples] == [0, 1, 2, 3] * 3
    by_question: dict[str, list[float]] = {}
    for s in circ_samples:
        by_question.setdefault(s["doc"]["id"], []).append(s["acc"])
    expected = sum(all(v) for v in by_question.values()) / len(by_question)
    assert circular["circular_acc,none"] == pytest.approx(expected)
    assert run["configs"]["adaculturesafe_knowledge_china"]["metadata"]["culturesafe_data"] == str(built_upstream)


def test_groups_on_the_bundled_sample_with_the_demo_model(demo_model: Path, tmp_path: Path) -> None:
    run = run_lm_eval(
        [
            "--model",
            "hf",
            "--model_args",
            f"pretrained={demo_model},dtype=float32",
            "--tasks",
            "adaculturesafe_knowledge,adaculturesafe_knowledge_gen",
            "--apply_chat_template",
            "--metadata",
            json.dumps({"culturesafe_data": "bundled"}),
            "--batch_size",
            "8",
            "--log_samples",
            "--limit",
            "4",
        ],
        tmp_path,
    )
    groups = run["groups"]
    assert set(groups) >= {"adaculturesafe_knowledge", "adaculturesafe_knowledge_gen"}
    countries = [t for t in run["results"] if t.startswith("adaculturesafe_knowledge_gen_")]
    assert len(countries) == 6
    # the group is a macro mean over countries, as in the paper
    macro = sum(run["results"][t]["acc,none"] for t in countries) / len(countries)
    assert groups["adaculturesafe_knowledge_gen"]["acc,none"] == pytest.approx(macro)
    # the instruct model follows the JSON protocol at least sometimes: the parser sees real answers
    assert groups["adaculturesafe_knowledge_gen"]["invalid_rate,none"] < 1.0


def test_lm_eval_ls_tasks_lists_ours() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lm_eval"), "ls", "tasks"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for name in (
        "adaculturesafe",
        "adaculturesafe_knowledge_circular",
        "adaculturesafe_knowledge_gen_viet_nam",
    ):
        assert f"|{name} " in done.stdout
