"""End to end: the real ``lm_eval`` CLI in a subprocess, against the installed package, no --include_path.

The module's three lm_eval processes are independent and start side by side.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.lm_eval_run import BIN, lm_eval_args, run_lm_eval, samples

from culturesafe_ext.parsing import parse_choice_letter


def release_run(built_upstream: Path, tiny_model: Path, tmp_path: Path) -> dict:
    tasks = "adaculturesafe_knowledge_china,adaculturesafe_knowledge_gen_china,adaculturesafe_knowledge_circular_china"
    metadata = {"culturesafe_data": str(built_upstream)}
    return run_lm_eval(lm_eval_args(tiny_model, tasks, metadata, limit=12, batch_size=4, max_gen_toks=8), tmp_path)


def demo_groups_run(demo_model: Path, tmp_path: Path) -> dict:
    tasks = "adaculturesafe_knowledge,adaculturesafe_knowledge_gen"
    metadata = {"culturesafe_data": "bundled"}
    args = lm_eval_args(demo_model, tasks, metadata, limit=4, batch_size=8, model_args="dtype=float32")
    return run_lm_eval([*args, "--apply_chat_template"], tmp_path)


def ls_tasks() -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lm_eval"), "ls", "tasks"], capture_output=True, text=True, timeout=600)


def lm_eval_jobs(
    built_upstream: Path, tiny_model: Path, demo_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The module's three lm_eval processes (started early by conftest's ``lm_eval_pool``)."""
    demo, release = tmp_path_factory.mktemp("demo"), tmp_path_factory.mktemp("release")
    return {
        "demo": lambda: demo_groups_run(demo_model, demo),
        "release": lambda: release_run(built_upstream, tiny_model, release),
        "ls": ls_tasks,
    }


def test_three_scoring_families_on_the_real_release(built_upstream: Path, lm_eval_runs: dict[str, Future]) -> None:
    run = lm_eval_runs["release"].result()
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


def test_groups_on_the_bundled_sample_with_the_demo_model(lm_eval_runs: dict[str, Future]) -> None:
    run = lm_eval_runs["demo"].result()
    groups = run["groups"]
    assert set(groups) >= {"adaculturesafe_knowledge", "adaculturesafe_knowledge_gen"}
    countries = [t for t in run["results"] if t.startswith("adaculturesafe_knowledge_gen_")]
    assert len(countries) == 6
    # the group is a macro mean over countries, as in the paper
    macro = sum(run["results"][t]["acc,none"] for t in countries) / len(countries)
    assert groups["adaculturesafe_knowledge_gen"]["acc,none"] == pytest.approx(macro)
    # the instruct model follows the JSON protocol at least sometimes: the parser sees real answers
    assert groups["adaculturesafe_knowledge_gen"]["invalid_rate,none"] < 1.0


def test_lm_eval_ls_tasks_lists_ours(lm_eval_runs: dict[str, Future]) -> None:
    done = lm_eval_runs["ls"].result()
    assert done.returncode == 0, done.stderr
    for name in (
        "adaculturesafe",
        "adaculturesafe_knowledge_circular",
        "adaculturesafe_knowledge_gen_viet_nam",
    ):
        assert f"|{name} " in done.stdout
