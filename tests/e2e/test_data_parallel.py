"""Data parallel: ``accelerate launch`` with two CPU processes (gloo) gives the results and samples of the
one-process run, for every task family and every culturesafe model (tests/support/dp_launch.py says why
the launch goes through a shim on a machine without GPUs).

Judging under data parallelism: the judge filter runs on every rank over that rank's documents, and the
ranks share one sqlite cache (WAL; each writer waits for the lock). A verdict depends only on its prompt
(the cache key), so it does not matter which rank asks; ``judge_failures`` and ``n_judged`` are
per-document metrics that lm-eval gathers from every rank before it sums them.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.lm_eval_run import OFFLINE_ENV, run_lm_eval
from support.openai_standin import StandIn
from support.served_model_standin import judge_verdicts

DP_LAUNCH = Path(__file__).parent.parent / "support" / "dp_launch.py"
FAMILIES = [
    "adaculturesafe_knowledge_china",
    "adaculturesafe_knowledge_gen_china",
    "adaculturesafe_knowledge_circular_china",
    "adaculturesafe_safety_china",
    "adaculturesafe_safety_wrongcustom_china",
    "culturax_greedy_books_and_press",
    "culturax_greedy_performance_and_celebration",
]
LIMIT = 5  # odd: the ranks get 3 and 2 documents, so lm-eval pads one rank's requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(args: list[str], tmp_path: Path, env: dict | None = None, timeout: int = 900) -> dict:
    """``accelerate launch --num_processes 2`` of the real lm_eval CLI on the CPU; rank 0's results JSON."""
    out = tmp_path / "lm_eval_out"
    bindir = Path(sys.executable).parent
    command = [
        str(bindir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(DP_LAUNCH), "run", *args, "--output_path", str(out),
    ]  # fmt: skip
    full_env = {**os.environ, **OFFLINE_ENV, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env["PATH"] = f"{bindir}:{full_env.get('PATH', '')}"
    done = _run_group(command, timeout, full_env)
    assert done.returncode == 0, f"accelerate launch failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    assert "on rank 1..." in done.stderr  # lm-eval really sharded the documents over two ranks
    [results] = sorted(out.rglob("results_*.json"))
    data = json.loads(results.read_text())
    data["_dir"], data["_stderr"] = str(results.parent), done.stderr
    return data


def _run_group(command: list[str], timeout: int, env: dict) -> subprocess.CompletedProcess:
    """Run the launcher in its own process group; on a timeout kill the whole group (the launcher and both
    ranks: a hung rank would otherwise outlive the test), then fail."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise AssertionError(f"accelerate launch ran past {timeout} s (killed):\n{stderr[-6000:]}") from None
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def one_and_two(args: list[str], tmp_path: Path, env: dict | None = None) -> tuple[dict, dict]:
    """The same lm_eval arguments in one process and in two, side by side (each is mostly start-up)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        one = pool.submit(run_lm_eval, args(tmp_path / "one") if callable(args) else args, tmp_path / "one", env)
        two = pool.submit(run_two_processes, args(tmp_path / "two") if callable(args) else args, tmp_path / "two", env)
        return one.result(), two.result()


def samples(run: dict, task: str) -> list[dict]:
    [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["doc_id"])


def _without_cache_flags(value):
    """Judge entries record whether each verdict came from the cache: that depends on timing, not the doc."""
    if isinstance(value, str) and value.startswith("{"):
        return _without_cache_flags(json.loads(value))
    if isinstance(value, dict):
        return {k: _without_cache_flags(v) for k, v in value.items() if k not in ("from_cache",)}
    if isinstance(value, list):
        return [_without_cache_flags(v) for v in value]
    return value


def assert_same_run(one: dict, two: dict, tasks: list[str]) -> None:
    """Every metric of every task (and group) and every logged sample equal to the one-process run."""
    for section in ("results", "groups"):
        assert set(one.get(section, {})) == set(two.get(section, {}))
        for task, metrics in one.get(section, {}).items():
            for metric, value in metrics.items():
                if metric.startswith("judge_new_"):  # what this run paid: 0 for whichever run found the shared cache
                    continue
                other = two[section][task][metric]
                if isinstance(value, float) and isinstance(other, float):
                    assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12) or (
                        math.isnan(value) and math.isnan(other)
                    ), (section, task, metric, value, other)
                else:
                    assert value == other, (section, task, metric)
    for task in tasks:
        assert one["n-samples"][task] == two["n-samples"][task]
        rows_one, rows_two = samples(one, task), samples(two, task)
        assert [r["doc_id"] for r in rows_one] == [r["doc_id"] for r in rows_two] == list(range(len(rows_one)))
        for a, b in zip(rows_one, rows_two, strict=True):
            # lm-eval evens out the ranks by sending a rank's last request again and appends those answers
            # to that instance's raw ``resps``; every filtered response and metric must be unaffected
            padded = [r[: len(x)] for r, x in zip(b["resps"], a["resps"], strict=True)]
            assert padded == a["resps"], (task, a["doc_id"])
            metrics = [m for m in a["metrics"] if not m.startswith("judge_new_")]  # paid by whichever run came first
            for key in ("doc_hash", "prompt_hash", "arguments", "filtered_resps", *metrics):
                assert _without_cache_flags(a[key]) == _without_cache_flags(b[key]), (task, a["doc_id"], key)


def test_every_task_family_equals_the_one_process_run(tiny_model: Path, tmp_path: Path) -> None:
    """Knowledge mc / gen / circular, safety and its wrong-custom control judged through one shared cache,
    CulturaX greedy (win-rate order drawn per document): the two-process run equals the one-process run."""
    with StandIn(responder=judge_verdicts) as judge:

        def args(folder: Path) -> list[str]:
            # one cache for all three processes (the docs carry the settings, so the path must match too)
            settings = {"backend": "openai", "model": "judge", "base_url": judge.base_url,
                        "cache_path": str(tmp_path / "judge.sqlite")}  # fmt: skip
            # the bundled CulturaX test split has one question per domain: lm-eval stops a rank that gets no
            # document ("did not find any docs"), so this run reads the train split (2 and 4 questions)
            meta = {"culturesafe_data": "bundled", "culturax_data": "bundled", "culturax_split": "train",
                    "judge": settings}  # fmt: skip
            return [
                "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32",
                "--tasks", ",".join(FAMILIES),
                "--limit", str(LIMIT), "--batch_size", "1", "--metadata", json.dumps(meta),
                "--gen_kwargs", "max_gen_toks=6", "--log_samples",
            ]  # fmt: skip

        one, two = one_and_two(args, tmp_path)
    assert_same_run(one, two, FAMILIES)
    assert "database is locked" not in two["_stderr"]
    for task in ("adaculturesafe_safety_china", "adaculturesafe_safety_wrongcustom_china"):
        assert two["results"][task]["n_judged,judge"] == 2 * LIMIT  # both ranks' judgements, none lost
        assert two["results"][task]["judge_failures,judge"] == 0
    orders = [row["doc"]["wr_order"] for row in samples(two, "culturax_greedy_performance_and_celebration")]
    assert orders == [row["doc"]["wr_order"] for row in samples(one, "culturax_greedy_performance_and_celebration")]


def _put_replies(path: str, worker: int, n: int) -> None:
    from culturesafe_ext.llm.cache import LLMCache

    with LLMCache(path) as cache:
        for i in range(n):
            cache.put(f"w{worker}-{i}", {"text": f"reply {worker} {i}"}, "openai", "m", "r")
            if i % 50 == 0:
                cache.get_many([f"w{1 - worker}-{i}"])  # readers and writers interleave, as two ranks do
                cache.flush()


def test_two_processes_write_one_judge_cache_without_losing_a_reply(tmp_path: Path) -> None:
    """Two ranks judging at once commit into one sqlite file: no 'database is locked', every reply kept."""
    from culturesafe_ext.llm.cache import LLMCache

    path, n = str(tmp_path / "judge.sqlite"), 2000
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_put_replies, args=(path, w, n)) for w in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    with LLMCache(path) as cache:
        assert cache.count() == 2 * n
        assert cache.get_many(["w0-1999", "w1-0"]) == {
            "w0-1999": {"text": "reply 0 1999"},
            "w1-0": {"text": "reply 1 0"},
        }


# --------------------------------------------------------------------------------------------------
# culturesafe's model wrappers under two processes. They are HFLM subclasses, so lm-eval shards their
# documents the same way; what each keeps beside the results (probe statistics, the retrieval index and
# recall, route counts) is checked against the one-process run: the wrappers gather it over the ranks
# (culturesafe_ext/models/ranks.py).
# --------------------------------------------------------------------------------------------------
WRAPPER_TASKS = ["adaculturesafe_knowledge_china", "adaculturesafe_knowledge_gen_india"]


def wrapper_args(model: str, model_args: str, extra_meta: dict | None = None, limit: int = LIMIT) -> list[str]:
    meta = {"culturesafe_data": "bundled", **(extra_meta or {})}
    return [
        "--model", model, "--model_args", model_args, "--tasks", ",".join(WRAPPER_TASKS), "--limit", str(limit),
        "--batch_size", "1", "--metadata", json.dumps(meta), "--gen_kwargs", "max_gen_toks=4", "--log_samples",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def probe_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("dp_probe")

    def args(folder: Path) -> list[str]:
        return wrapper_args("hf-probe", f"pretrained={tiny_model},dtype=float32,probe_out={folder / 'probe'}")

    one, two = one_and_two(args, root)
    return {"one": one, "two": two, "root": root}


def test_hf_probe_results_equal_the_one_process_run(probe_runs: dict) -> None:
    assert_same_run(probe_runs["one"], probe_runs["two"], WRAPPER_TASKS)


def test_hf_probe_writes_the_whole_runs_statistics_once(probe_runs: dict) -> None:
    import numpy as np

    one, two = probe_runs["root"] / "one" / "probe", probe_runs["root"] / "two" / "probe"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert sorted(p.name for p in one.glob("*.npz")) == sorted(f"{task}.npz" for task in WRAPPER_TASKS)
    for path in one.glob("*.npz"):
        a, b = np.load(path), np.load(two / path.name)
        assert json.loads(str(a["meta"])) == json.loads(str(b["meta"])), path.name  # n_docs, n_tokens, layers
        assert json.loads(str(a["meta"]))["n_docs"] == LIMIT
        for key in ("act_sum", "topk_count", "tokens"):  # exact: sums on the 2^-24 grid, buckets by doc hash
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{path.name}: {key}")
    summary = json.loads((two / "probe_stats.json").read_text())
    assert summary == json.loads((one / "probe_stats.json").read_text())


@pytest.fixture(scope="module")
def grounded_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("dp_grounded")

    def args(folder: Path) -> list[str]:
        model_args = (
            f"pretrained={tiny_model},dtype=float32,grounding=retrieve,knowledge_source=docs,top_k=3,"
            f"grounding_log={folder / 'grounding.jsonl'}"
        )
        # 6 documents = 5 MCQs of one description and 1 of the next: rank 0's documents (0, 2, 4) never show
        # the second description, the one-process run's do
        return [*wrapper_args("hf-grounded", model_args, limit=6), "--apply_chat_template"]

    one, two = one_and_two(args, root)
    return {"one": one, "two": two}


def test_hf_grounded_docs_index_and_results_equal_the_one_process_run(grounded_runs: dict) -> None:
    assert_same_run(grounded_runs["one"], grounded_runs["two"], WRAPPER_TASKS)


def test_hf_grounded_recall_counts_every_rank(grounded_runs: dict) -> None:
    one, two = grounded_runs["one"]["config"]["grounding"], grounded_runs["two"]["config"]["grounding"]
    assert one["documents"] == 2 * 6  # both tasks' documents, one line each
    assert two["retrieval_recall"] == one["retrieval_recall"]
    assert (two["documents"], two["empty_knowledge"]) == (one["documents"], one["empty_knowledge"])
    # both ranks append to the one log file: the same lines (what each document was grounded with)
    lines = {k: sorted(Path(g["log"]).read_text().splitlines()) for k, g in (("one", one), ("two", two))}
    assert lines["two"] == lines["one"] and len(lines["one"]) == one["documents"]


@pytest.fixture(scope="module")
def router_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("dp_router")
    exe = str(Path(sys.executable).parent / "culturesafe")
    command = [exe, "train", "adapters", "--base", str(tiny_model), "--out", str(root / "adapters"),
               "--cultures", "china,india", "--max-steps", "1", "--batch-size", "2"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **OFFLINE_ENV}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    split = {"culturesafe_split": str(root / "adapters" / "split.json")}
    args = wrapper_args("hf-router", f"pretrained={tiny_model},adapters={root / 'adapters'},routing=oracle", split)
    try:
        one, two = one_and_two(args, root)
    except AssertionError as err:  # the two-process run failed: the tests below say so
        return {"error": str(err)[-3000:]}
    return {"one": one, "two": two}


def test_hf_router_results_and_routes_equal_the_one_process_run(router_runs: dict) -> None:
    assert "error" not in router_runs, router_runs.get("error")
    assert_same_run(router_runs["one"], router_runs["two"], WRAPPER_TASKS)  # the route tags are in the arguments


def test_hf_router_route_counts_are_summed_over_ranks(router_runs: dict) -> None:
    assert "error" not in router_runs, router_runs.get("error")
    one, two = router_runs["one"]["config"], router_runs["two"]["config"]
    assert sum(one["route_counts"].values()) == 4 * LIMIT + LIMIT  # 4 options per MCQ + one generation each
    assert set(one["route_counts"]) == {"china", "india"}
    assert two["route_counts"] == one["route_counts"]
    assert two["fallback_counts"] == one["fallback_counts"]
