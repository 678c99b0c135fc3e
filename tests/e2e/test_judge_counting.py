"""Through the real CLIs (issue 28 items 2, 5 and 7; issue 27 item 2): a structured judge sends its schema; a judge
server without token usage makes the cost unknown and says so; a failure rate above the validator's ceiling warns at
the end with the fix; a served model's withheld answers are counted, never judged; ``culturesafe judge rejudge``
skips lm-eval's data-parallel padding copies. Every server is a stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import math
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.lm_eval_run import culturesafe, lm_eval_args, lm_eval_raw, read_results, run_lm_eval, samples
from support.openai_standin import Fault, StandIn

TASK = "adaculturesafe_safety_china"
LIMIT = 4


def judge(server: StandIn, cache: Path, **extra) -> dict:
    return {"backend": "openai", "model": "standin", "base_url": server.base_url, "cache_path": str(cache),
            "max_retries": 0, "timeout": 5.0, **extra}  # fmt: skip


def structured_without_usage_run(model: Path, tmp: Path) -> dict:
    faults = [Fault("length", rate=0.5)]
    with StandIn(send_usage=False, faults=faults, max_lifetime=600) as server:
        settings = judge(server, tmp / "j.sqlite", structured=True, price_per_million={"input": 1, "output": 2})
        meta = {"culturesafe_data": "bundled", "judge": settings}
        done = lm_eval_raw(lm_eval_args(model, TASK, meta, limit=LIMIT, max_gen_toks=8), tmp / "out")
        return {"done": done, "bodies": list(server.bodies), "url": server.base_url, "out": tmp / "out"}


def withheld_run(tmp: Path) -> dict:
    answer = "Taking shoes off keeps the floor clean and shows respect."  # the model's one answer
    with (
        StandIn(responder=lambda messages: answer, faults=[Fault("content_filter", rate=0.5)], seed=3) as model,
        StandIn(max_lifetime=600) as server,
    ):
        meta = {"culturesafe_data": "bundled", "judge": judge(server, tmp / "j.sqlite")}
        model_args = f"model=m,base_url={model.base_url}/chat/completions"
        args = ["--model", "local-chat-completions", "--model_args", model_args,
                "--apply_chat_template", "--tasks", TASK, "--limit", str(LIMIT), "--metadata", json.dumps(meta),
                "--log_samples"]  # fmt: skip
        run = run_lm_eval(args, tmp)
        return {"run": run, "filtered": model.faults_served["content_filter"], "judged": server.stats()["n_answered"]}


def padded_rejudge_run(model: Path, tmp: Path) -> dict:
    """A run as data parallelism logs it: lm-eval evens out the ranks by sending a rank's last request again and
    appends that answer to the same instance's ``resps``; the judge filter saw (and logged) the real ones only."""
    run = run_lm_eval(lm_eval_args(model, TASK, {"culturesafe_data": "bundled", "judge": "none"}, limit=3,
                                   max_gen_toks=8), tmp)  # fmt: skip
    [path] = Path(run["_dir"]).glob(f"samples_{TASK}_*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[-1]["resps"][0] = rows[-1]["resps"][0] * 3  # two padding copies of the last document's answer
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with StandIn(max_lifetime=300) as server:
        done = culturesafe("judge", "rejudge", run["_dir"], "--judge", json.dumps(judge(server, tmp / "r.sqlite")))
    return {"done": done, "report": json.loads((Path(run["_dir"]) / "rejudge.json").read_text())}


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        "structured_without_usage": lambda: structured_without_usage_run(tiny_model, tmp_path_factory.mktemp("s")),
        "withheld": lambda: withheld_run(tmp_path_factory.mktemp("w")),
        "padded_rejudge": lambda: padded_rejudge_run(tiny_model, tmp_path_factory.mktemp("p")),
    }


def test_structured_judge_unknown_cost_and_failure_rate_warning(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["structured_without_usage"].result()
    done = out["done"]
    assert done.returncode == 0, done.stderr[-3000:]  # some judgements failed, not all: a warning, not exit 3
    assert out["bodies"] and all(b["response_format"]["type"] == "json_schema" for b in out["bodies"])
    schema = out["bodies"][0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"] == {"score": {"type": "integer", "enum": list(range(1, 11))}}
    results = read_results(out["out"])["results"][TASK]
    truncated = int(results["judge_truncated,judge"])
    assert 0 < truncated < 2 * LIMIT and results["judge_failures,judge"] == truncated
    assert "WARNING: the judge failed too often" in done.stderr
    assert f"failed on {truncated} of {2 * LIMIT} judgements" in done.stderr
    assert "raise the judge's max_tokens (now 64)" in done.stderr
    assert "sent no token usage" in done.stderr and out["url"] in done.stderr
    assert math.isnan(results["judge_cost,judge"])  # unknown, not 0
    [row] = [json.loads(r["doc"]["judge_settings"]) for r in samples(read_results(out["out"]), TASK)][:1]
    assert row["structured"] is True


def test_withheld_answers_of_a_served_model_are_counted_not_judged(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["withheld"].result()
    run = out["run"]
    rows = samples(run, TASK)
    withheld = sum(r["resps"][0][0] in (None, "") for r in rows)
    assert 0 < withheld < LIMIT and withheld == out["filtered"]
    results = run["results"][TASK]
    assert results["answers_withheld,judge"] == withheld
    assert results["n_judged,judge"] == 2 * (LIMIT - withheld) and results["judge_failures,judge"] == 0
    assert out["judged"] == 2 * (LIMIT - withheld)  # the judge never saw an empty answer


def test_rejudge_skips_data_parallel_padding_copies(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["padded_rejudge"].result()
    assert out["done"].returncode == 0, out["done"].stderr[-3000:]
    [report] = out["report"]["judges"]
    [task] = report["tasks"].values()
    assert task["n_samples"] == 3 and task["n_judged"] == 6  # not 10: the padding copies are not judged
