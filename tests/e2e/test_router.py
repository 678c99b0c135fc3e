"""hf-router through the real lm_eval CLI in every routing mode, with adapters and a router trained by
``culturesafe train`` on the bundled sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.lm_eval_run import OFFLINE_ENV, run_lm_eval

MODES = ["learned", "oracle", "fixed:india", "none"]


@pytest.fixture(scope="session")
def bundled_router(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Adapters and router for the bundled sample, trained through the `culturesafe train` commands."""
    root = tmp_path_factory.mktemp("bundled_router")
    exe = str(Path(sys.executable).parent / "culturesafe")
    env = {**__import__("os").environ, **OFFLINE_ENV}
    for command in (
        ["adapters", "--base", str(tiny_model), "--out", str(root / "adapters"), "--cultures", "china,india",
         "--max-steps", "2", "--learning-rate", "5e-2", "--batch-size", "2"],
        ["router", "--base", str(tiny_model), "--out", str(root / "router"),
         "--split", str(root / "adapters/split.json")],
    ):  # fmt: skip
        done = subprocess.run([exe, "train", *command], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    assert "router held-out accuracy" in done.stdout
    return {"adapters": root / "adapters", "router": root / "router"}


def _run_mode(routing: str, tiny_model: Path, bundled_router: dict, tmp_path: Path) -> dict:
    model_args = f"pretrained={tiny_model},adapters={bundled_router['adapters']},routing={routing}"
    if routing == "learned":  # the router knows all six bundled cultures, the adapters only two: counted
        model_args += f",router={bundled_router['router']},missing_adapter=base"
    extra = ["--use_cache", str(tmp_path / "cache")] if routing == "oracle" else []
    return run_lm_eval(
        [
            "--model", "hf-router", "--model_args", model_args,
            "--tasks", "adaculturesafe_knowledge_china,adaculturesafe_knowledge_gen_india",
            "--metadata", json.dumps({"culturesafe_data": "bundled",
                                      "culturesafe_split": str(bundled_router["adapters"] / "split.json")}),
            "--limit", "3", "--batch_size", "4", "--gen_kwargs", "max_gen_toks=4", "--log_samples", *extra,
        ],
        tmp_path,
    )  # fmt: skip


def test_lm_eval_runs_every_routing_mode(tiny_model: Path, bundled_router, tmp_path: Path) -> None:
    """One lm_eval CLI run per routing mode (two at a time: each is mostly start-up on one core)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            m: pool.submit(_run_mode, m, tiny_model, bundled_router, tmp_path / f"run{i}") for i, m in enumerate(MODES)
        }
    runs = {m: f.result() for m, f in futures.items()}
    expected = {"oracle": {"china", "india"}, "fixed:india": {"india"}, "none": {"__base__"}}
    for routing, run in runs.items():
        assert run["config"]["routing"] == routing
        routes = set()
        for task in ("adaculturesafe_knowledge_china", "adaculturesafe_knowledge_gen_india"):
            [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
            for sample in map(json.loads, path.read_text().splitlines()):
                for gen_args in sample["arguments"].values():
                    routes.add(gen_args[f"arg_{len(gen_args) - 1}"]["culturesafe_route"])
            assert run["n-samples"][task]["effective"] == 3
        assert routes == expected[routing] if routing in expected else routes <= {"china", "india", "__base__"}
        assert sum(run["config"]["route_counts"].values()) == 3 * 4 + 3  # 3 MCQs x 4 options + 3 generations
        fallbacks = sum(run["config"]["fallback_counts"].values())
        assert fallbacks == run["config"]["route_counts"].get("__base__", 0) if routing == "learned" else not fallbacks
    assert list((tmp_path / "run1").glob("cache_rank0.db"))  # --use_cache went through the route-keyed path

    from culturesafe_ext.analysis.routing_compare import FORMAT, compare

    labels = {"base": "none", "fixed": "fixed:india", "learned": "learned", "oracle": "oracle"}
    report = compare({label: runs[mode]["_dir"] for label, mode in labels.items()})
    assert report["format"] == FORMAT
    china = report["table"]["adaculturesafe_knowledge"]["china"]
    assert china["oracle"] == {"value": runs["oracle"]["results"]["adaculturesafe_knowledge_china"]["acc,none"],
                               "stderr": china["oracle"]["stderr"], "n": 3}  # fmt: skip
    gap = report["oracle_minus_learned"]["adaculturesafe_knowledge"]["by_country"]["china"]
    assert gap == pytest.approx(china["oracle"]["value"] - china["learned"]["value"])
    assert report["routing_accuracy"]["oracle"] == {**report["routing_accuracy"]["oracle"], "correct": 15, "n": 15}
    assert report["routing_accuracy"]["base"]["correct"] == 0


def test_trained_adapters_refuse_evaluation_on_their_training_descriptions(bundled_router) -> None:
    from culturesafe_ext.data.loader import load_adaculturesafe

    with pytest.raises(ValueError, match="were used to train the model"):
        load_adaculturesafe("knowledge_china", culturesafe_data="bundled", adapters=str(bundled_router["adapters"]))
    held = load_adaculturesafe(
        "knowledge_china",
        culturesafe_data="bundled",
        adapters=str(bundled_router["adapters"]),
        router=str(bundled_router["router"]),
        culturesafe_split=str(bundled_router["adapters"] / "split.json"),
    )
    assert len(held["test"]) == 5
