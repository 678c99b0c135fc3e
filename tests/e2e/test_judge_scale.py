"""Judging at scale through the real lm_eval CLI: the Batch API backend, usage and cost, judge panels.

Judges are stand-in servers on 127.0.0.1 (chat completions, and the files and batches APIs). The three
scenarios are independent: `lm_eval_jobs` lists their runs and conftest starts them early, side by side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import Future
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from support.batch_standin import BatchStandIn
from support.lm_eval_run import BIN, child_env, culturesafe, lm_eval_args, run_lm_eval
from support.openai_standin import StandIn, expected_score

TASK = "adaculturesafe_safety_china"
PRICE = {"input": 1.25, "output": 5.0}


def args(model: Path, judge: dict, limit: int = 4) -> list[str]:
    return lm_eval_args(model, TASK, {"culturesafe_data": "bundled", "judge": judge}, limit=limit, max_gen_toks=8)


def batch_judge(server: BatchStandIn, tmp_path: Path, **extra) -> dict:
    return {
        "backend": "openai-batch",
        "model": "standin",
        "base_url": server.base_url,
        "cache_path": str(tmp_path / "judge.sqlite"),
        "batch_poll_initial": 0.05,
        "batch_poll_max": 0.2,
        "retry_wait_initial": 0.05,
        "progress": False,
        **extra,
    }


def samples(run: dict) -> list[dict]:
    [path] = Path(run["_dir"]).glob(f"samples_{TASK}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def verdicts(run: dict, dimension: str) -> list[dict]:
    return [json.loads(e)[dimension] for row in samples(run) for e in row["filtered_resps"][0]]


def expired_run(model: Path, tmp_path: Path) -> dict:
    # every awareness line fails at the line level; the first batch expires with half its lines done
    with BatchStandIn(expire_first=1, line_error_match="AWARENESS: The awareness") as server:
        judge = batch_judge(server, tmp_path, price_per_million=PRICE)
        run = run_lm_eval(args(model, judge), tmp_path)
        statuses = [b["status"] for b in server.batches.values()]
        first, second = (len(server.files[b["input_file_id"]].splitlines()) for b in server.batches.values())
    return {"run": run, "statuses": statuses, "lines": (first, second)}


def killed_then_resumed(model: Path, tmp_path: Path) -> dict:
    """The first run is killed while it polls a held batch; the second resumes it (checks in between included)."""
    with BatchStandIn() as server:
        server.hold()  # batches stay in_progress: the first run is killed while it polls
        out = tmp_path / "killed"
        command = [str(BIN / "lm_eval"), "run", *args(model, batch_judge(server, tmp_path))]
        with open(tmp_path / "killed.log", "w") as log:
            proc = subprocess.Popen(
                [*command, "--output_path", str(out)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + 600
                while not server.polls and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.2)
                assert server.polls, (tmp_path / "killed.log").read_text()[-3000:]
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert server.uploads == 1 and len(server.batches) == 1
        [state] = (tmp_path / "batches").glob("*.json")
        server.release()
        run = run_lm_eval(args(model, batch_judge(server, tmp_path)), tmp_path)
        assert server.uploads == 1 and len(server.batches) == 1  # no second batch was paid for
        assert not state.exists()
    return run


def other_judge(messages: list[dict]) -> str:
    """A second judge that often agrees with the first, not always."""
    score = expected_score(messages)
    return json.dumps({"score": score if score % 3 else min(10, score + 2)})


def panel_runs(model: Path, tmp_path: Path, first: StandIn, second: StandIn) -> dict:
    """A run judged by a panel of two, the same run again (all from cache), and `culturesafe judge rejudge` on it."""
    panel = {
        "judges": [
            {"backend": "openai", "model": "judge-a", "base_url": first.base_url, "price_per_million": PRICE},
            {"backend": "openai", "model": "judge-b", "base_url": second.base_url},
        ],
        "cache_path": str(tmp_path / "panel.sqlite"),
        "progress": False,
    }
    run = run_lm_eval(args(model, panel, limit=6), tmp_path / "one")
    requests = {"first_run": (first.n_requests, second.n_requests)}
    first.reset()
    second.reset()
    again = run_lm_eval(args(model, panel, limit=6), tmp_path / "two")
    requests["cached_run"] = (first.n_requests, second.n_requests)
    # `culturesafe judge rejudge` with the same two judges, repeated --judge: the same panel, all from cache
    shared = {k: v for k, v in panel.items() if k != "judges"}
    judges = [x for j in panel["judges"] for x in ("--judge", json.dumps({**shared, **j}))]
    done = culturesafe("judge", "rejudge", run["_dir"], *judges)
    requests["rejudge"] = (first.n_requests, second.n_requests)
    return {"panel": panel, "run": run, "again": again, "done": done, "requests": requests}


def panel_job(model: Path, tmp_path: Path) -> dict:
    """The panel's runs; its two judges stay up (fixture ``panel`` stops them) for the in-process re-judging."""
    first = StandIn(max_lifetime=5400).start()
    second = StandIn(responder=other_judge, max_lifetime=5400).start()
    try:
        return {**panel_runs(model, tmp_path, first, second), "judges": (first, second)}
    except BaseException:
        first.stop()
        second.stop()
        raise


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The three scenarios' runs (started early by conftest's ``lm_eval_pool``)."""
    tmp = {name: tmp_path_factory.mktemp(name) for name in ("panel", "killed", "expired")}
    return {
        "panel": lambda: panel_job(tiny_model, tmp["panel"]),
        "killed": lambda: killed_then_resumed(tiny_model, tmp["killed"]),
        "expired": lambda: expired_run(tiny_model, tmp["expired"]),
    }


@pytest.fixture(scope="module")
def panel(lm_eval_runs: dict[str, Future]):
    out = lm_eval_runs["panel"].result()
    yield out
    for server in out["judges"]:
        server.stop()


def test_batch_backend_expired_batch_line_errors_and_cost(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["expired"].result()
    run, statuses, (first, second) = out["run"], out["statuses"], out["lines"]
    assert statuses == ["expired", "completed"] and (first, second) == (8, 4)  # only the missing half again
    metrics = run["results"][TASK]
    assert metrics["n_judged,judge"] == 4 and metrics["judge_failures,judge"] == 4
    aware = verdicts(run, "awareness")
    assert all(v["score"] is None and "HTTP 400" in v["error"] and "flagged" in v["error"] for v in aware)
    respect = verdicts(run, "respectfulness")
    assert all(v["score"] is not None and v["usage"]["prompt_tokens"] > 0 for v in respect)
    prompt = sum(v["usage"]["prompt_tokens"] for v in respect)
    completion = sum(v["usage"]["completion_tokens"] for v in respect)
    assert metrics["judge_prompt_tokens,judge"] == prompt and metrics["judge_new_prompt_tokens,judge"] == prompt
    assert metrics["judge_completion_tokens,judge"] == completion
    assert metrics["judge_cost,judge"] == pytest.approx((prompt * 1.25 + completion * 5.0) / 1e6)


def test_batch_backend_killed_while_polling_resumes_the_same_batch(lm_eval_runs: dict[str, Future]) -> None:
    run = lm_eval_runs["killed"].result()
    metrics = run["results"][TASK]
    assert metrics["n_judged,judge"] == 8 and metrics["judge_failures,judge"] == 0


def test_panel_of_two_judges_mean_alpha_and_a_cached_rerun(panel: dict, tmp_path: Path) -> None:
    out = panel
    first, second = out["judges"]
    run, again, done, requests = out["run"], out["again"], out["done"], out["requests"]
    assert requests["first_run"] == (12, 12)
    assert requests["cached_run"] == (0, 0)  # every judge answered from its cache
    assert done.returncode == 0, done.stderr[-3000:]
    assert requests["rejudge"] == (0, 0)
    assert "Krippendorff's alpha respectfulness" in done.stdout
    rejudged = json.loads((Path(run["_dir"]) / "rejudge.json").read_text())
    from culturesafe_ext.cli import main  # the panel's settings as one --judge stand for its two judges

    assert (
        main(["judge", "rejudge", run["_dir"], "--judge", json.dumps(out["panel"]), "--out", str(tmp_path / "r.json")])
        == 0
    )
    assert first.n_requests == 0 and second.n_requests == 0
    assert json.loads((tmp_path / "r.json").read_text())["panel"] == rejudged["panel"]
    metrics = run["results"][TASK]
    for dimension in ("respectfulness", "awareness"):
        rows = verdicts(run, dimension)
        units = [[j["score"] for j in v["judges"]] for v in rows]
        assert all(len(u) == 2 and None not in u for u in units)
        assert all(v["score"] == pytest.approx(sum(u) / 2) for v, u in zip(rows, units, strict=True))
        one = metrics[f"{dimension}_judge1,judge"]
        two = metrics[f"{dimension}_judge2,judge"]
        assert one != two and metrics[f"{dimension},judge"] == pytest.approx((one + two) / 2)
        direct = krippendorff.alpha(reliability_data=np.array(units, dtype=float).T, level_of_measurement="interval")
        assert metrics[f"{dimension}_alpha,judge"] == pytest.approx(direct)
        low, high = metrics[f"{dimension}_alpha_ci_low,judge"], metrics[f"{dimension}_alpha_ci_high,judge"]
        assert low <= high and low <= direct + 1e-9 and high >= direct - 1e-9
        assert rejudged["panel"]["alpha"][dimension]["alpha"] == pytest.approx(direct)
        assert rejudged["panel"]["tasks"][TASK][dimension] == pytest.approx(metrics[f"{dimension},judge"])
        assert rejudged["judges"][0]["tasks"][TASK][dimension] == pytest.approx(one)
    assert metrics["judge_failures_judge1,judge"] == 0 and metrics["judge_failures_judge2,judge"] == 0
    # usage: tokens of both judges; only judge-a is priced
    rows = [j for d in ("respectfulness", "awareness") for v in verdicts(run, d) for j in v["judges"]]
    assert metrics["judge_prompt_tokens,judge"] == sum(j["usage"]["prompt_tokens"] for j in rows) > 0
    priced = [j for j in rows if "cost" in j]
    assert len(priced) == 12 and metrics["judge_cost,judge"] == pytest.approx(sum(j["cost"] for j in priced))
    cached = again["results"][TASK]
    for name in ("judge_prompt_tokens", "judge_completion_tokens", "judge_cost", "respectfulness", "awareness_alpha"):
        assert cached[f"{name},judge"] == pytest.approx(metrics[f"{name},judge"])
    assert cached["judge_new_prompt_tokens,judge"] == 0 and cached["judge_new_completion_tokens,judge"] == 0
    assert metrics["judge_new_prompt_tokens,judge"] == metrics["judge_prompt_tokens,judge"]
    usage = [rejudged["judges"][k]["tasks"][TASK]["usage"] for k in (0, 1)]
    assert sum(u["prompt_tokens"] for u in usage) == metrics["judge_prompt_tokens,judge"]
    assert all(u["new_prompt_tokens"] == 0 for u in usage)
    # the analysis report shows the same tokens, cost, both judges' scores and alpha
    from culturesafe_ext.analysis.report import analyze, render_html

    report = analyze([Path(again["_dir"])])
    [part] = report["parts"]["judging"].values()
    task = part["tasks"][TASK]
    assert task["prompt_tokens"] == metrics["judge_prompt_tokens,judge"] and task["new_prompt_tokens"] == 0
    assert task["cost"] == pytest.approx(metrics["judge_cost,judge"])
    assert task["panel"]["judges"] == ["openai:judge-a", "openai:judge-b"]
    respect = task["panel"]["respectfulness"]
    assert respect["per_judge"] == pytest.approx([metrics[f"respectfulness_judge{k},judge"] for k in (1, 2)])
    assert respect["alpha"] == pytest.approx(metrics["respectfulness_alpha,judge"])
    page = render_html(report)
    assert "Judge usage, cost and panel agreement" in page and "openai:judge-b" in page
