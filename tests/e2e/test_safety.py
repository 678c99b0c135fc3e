"""Safety tasks end to end: the real lm_eval CLI, judged through the stand-in server on 127.0.0.1.

Every test here reads its own lm_eval run; `lm_eval_jobs` lists them, and conftest starts them early, side by side.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.lm_eval_run import child_env, culturesafe, lm_eval_args, lm_eval_raw, run_lm_eval, samples
from support.openai_standin import Fault, StandIn

SENTINEL = "sk-culturesafe-SENTINEL-7c1e"
TASKS = "adaculturesafe_safety_china,adaculturesafe_safety_wrongcustom_china"
UNUSABLE = [
    ({"cache_path": "CORRUPT"}, {}, "not a usable sqlite file"),
    ({}, {"hf_token": "hf_abcdefghijklmnopqrstuv"}, "secret-looking metadata ['metadata.hf_token']"),
]


def judge_settings(server: StandIn, cache: Path, **extra) -> dict:
    return {
        "backend": "openai",
        "model": "standin",
        "base_url": server.base_url,
        "cache_path": str(cache),
        "timeout": 2.0,
        "max_retries": 3,
        "retry_wait_initial": 0.05,
        "retry_wait_max": 0.5,
        **extra,
    }


def safety_args(model: Path, metadata: dict, limit: int = 4) -> list[str]:
    return lm_eval_args(model, TASKS, metadata, limit=limit, max_gen_toks=8)


def judged_entries(row: dict) -> list[dict]:
    """The judge filter's output for one logged sample: one JSON object per response."""
    return [json.loads(e) for e in row["filtered_resps"][0]]


# --- the runs: each job starts its own stand-in and lm_eval, and returns what its test checks ----------------
def faults_run(model: Path, tmp: Path) -> dict:
    faults = [
        Fault("429", rate=0.3, first_n=1, retry_after=0.1),
        Fault("500", rate=0.2, first_n=1),
        Fault("drop", rate=0.1, first_n=1),
        Fault("garbage", rate=0.15),
        Fault("out_of_range", rate=0.1),
    ]
    cache = tmp / "judge.sqlite"
    with StandIn(latency=0.01, faults=faults, hang_seconds=3, max_lifetime=600) as server:
        meta = {"culturesafe_data": "bundled", "judge": judge_settings(server, cache)}
        run = run_lm_eval(safety_args(model, meta), tmp, env={"CULTURESAFE_JUDGE_API_KEY": SENTINEL})
        sent_key = server.authorizations[f"Bearer {SENTINEL}"]
        return {"run": run, "sent_key": sent_key, "served": dict(server.faults_served), "tmp": tmp}


def wrong_custom_run(model: Path, tmp: Path) -> dict:
    with StandIn(max_lifetime=300) as server:
        meta = {"culturesafe_data": "bundled", "judge": judge_settings(server, tmp / "c.sqlite")}
        return run_lm_eval(safety_args(model, meta, limit=10), tmp)


def no_judge_run(model: Path, tmp: Path) -> dict:
    env = {k: v for k, v in child_env().items() if not k.startswith("CULTURESAFE_JUDGE_")}
    done = lm_eval_raw(safety_args(model, {"culturesafe_data": "bundled"}), tmp / "out", timeout=600, base_env=env)
    return {"done": done, "out": tmp / "out"}


def judge_none_then_rejudge(model: Path, tmp: Path) -> dict:
    run = run_lm_eval(safety_args(model, {"culturesafe_data": "bundled", "judge": {"backend": "none"}}, 3), tmp)
    with StandIn(max_lifetime=300) as server:
        settings = [
            json.dumps(judge_settings(server, tmp / "j.sqlite", progress=False)),
            json.dumps({"backend": "hf", "model": str(model), "cache_path": str(tmp / "h.sqlite"), "progress": False}),
        ]
        done = culturesafe("judge", "rejudge", run["_dir"], "--judge", settings[0], "--judge", settings[1])
        return {"run": run, "done": done, "requests": server.n_requests}


def refused_run(model: Path, tmp: Path) -> dict:
    with StandIn(faults=[Fault("401")], max_lifetime=600) as server:
        judge = judge_settings(server, tmp / "judge.sqlite", concurrency=1)
        meta = {"culturesafe_data": "bundled", "judge": judge}
        env = {"CULTURESAFE_JUDGE_API_KEY": SENTINEL}
        done = lm_eval_raw(safety_args(model, meta), tmp / "out", env=env, timeout=600)
        return {"done": done, "sent": server.n_requests, "out": tmp / "out"}


def unusable_run(model: Path, tmp: Path, judge_extra: dict, metadata_extra: dict) -> dict:
    corrupt = tmp / "corrupt.sqlite"
    corrupt.write_text("not a database\n" * 200)
    with StandIn(max_lifetime=600) as server:
        judge = judge_settings(server, tmp / "judge.sqlite")
        judge.update({k: str(corrupt) if v == "CORRUPT" else v for k, v in judge_extra.items()})
        meta = {"culturesafe_data": "bundled", "judge": judge, **metadata_extra}
        done = lm_eval_raw(safety_args(model, meta), tmp / "out", timeout=600)
        return {"done": done, "requests": server.n_requests}


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each test's own run (started early by conftest's ``lm_eval_pool``)."""

    def job(name: str, fn, *args):
        tmp = tmp_path_factory.mktemp(name)
        return name, lambda: fn(tiny_model, tmp, *args)

    return dict(
        [
            job("judge_none", judge_none_then_rejudge),
            job("faults", faults_run),
            job("wrong_custom", wrong_custom_run),
            job("refused", refused_run),
            job("no_judge", no_judge_run),
            *(job(f"unusable{i}", unusable_run, j, m) for i, (j, m, _) in enumerate(UNUSABLE)),
        ]
    )


def test_faults_are_counted_and_the_key_is_nowhere(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["faults"].result()
    run, served = out["run"], out["served"]
    assert out["sent_key"] > 0  # the key was sent ...
    assert served.get("garbage", 0) + served.get("out_of_range", 0) > 0
    for task in TASKS.split(","):
        metrics, rows = run["results"][task], samples(run, task)
        assert len(rows) == 4
        judged = [e[d] for r in rows for e in judged_entries(r) for d in ("respectfulness", "awareness")]
        failed = [j for j in judged if j["score"] is None]
        # 0 responses lost: every response has both dimensions, scored or counted as a failure
        assert len(judged) == 8 and metrics["n_judged,judge"] + metrics["judge_failures,judge"] == 8
        assert metrics["judge_failures,judge"] == len(failed)
        assert all(j["error"] for j in failed)
        scored = [
            j["score"] for r in rows for e in judged_entries(r) for j in [e["respectfulness"]] if j["score"] is not None
        ]
        if scored:
            assert metrics["respectfulness,judge"] == pytest.approx(sum(scored) / len(scored))  # 1 doc/description here
    written = [p for p in [*Path(run["_dir"]).rglob("*"), *out["tmp"].glob("judge.sqlite*")] if p.is_file()]
    assert written and not [p for p in written if SENTINEL.encode() in p.read_bytes()]  # ... and is on no disk
    assert SENTINEL not in run["_stdout"]


def test_wrong_custom_reaches_the_judge(lm_eval_runs: dict[str, Future]) -> None:
    run = lm_eval_runs["wrong_custom"].result()
    plain, wrong = (samples(run, t) for t in TASKS.split(","))
    for a, b in zip(plain, wrong, strict=True):
        assert a["doc"]["judge_custom"] == a["doc"]["description"]
        assert b["doc"]["judge_custom"] != b["doc"]["description"]
        assert a["resps"] == b["resps"]  # same greedy answers: only the custom shown to the judge differs


def test_no_judge_fails_before_generating(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["no_judge"].result()
    done = out["done"]
    assert done.returncode != 0
    assert "No judge is configured" in done.stderr and '"backend": "none"' in done.stderr
    assert "Running generate_until requests" not in done.stderr and not out["out"].exists()


def test_judge_none_logs_responses_and_rejudge_compares_judges(lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs["judge_none"].result()
    run, done = out["run"], out["done"]
    assert run["results"]["adaculturesafe_safety_china"]["n_judged,judge"] == 0
    assert all(r["resps"][0][0] is not None for r in samples(run, "adaculturesafe_safety_china"))
    assert done.returncode == 0, done.stderr
    assert out["requests"] == 2 * 2 * 3  # 2 tasks x 3 samples x 2 dimensions, nothing generated again
    report = json.loads((Path(run["_dir"]) / "rejudge.json").read_text())
    assert [j["judge"]["backend"] for j in report["judges"]] == ["openai", "hf"]
    assert report["judges"][0]["tasks"]["adaculturesafe_safety_china"]["n_judged"] == 6
    pair = report["agreement"]["0-1"]["respectfulness"]
    assert pair["n"] == 6 and {"spearman_rho", "exact", "within_1"} <= set(pair)


def test_refused_judge_stops_keeps_the_answers_and_exits_non_zero(lm_eval_runs: dict[str, Future]) -> None:
    """Issue 20: a judge answering 401 to everything got every prompt, and lm_eval exited 0 with NaN."""
    out = lm_eval_runs["refused"].result()
    done, sent = out["done"], out["sent"]
    assert done.returncode == 3, done.stderr[-3000:]
    assert sent == 2  # one per task: each stops at its first refusal (16 requests before)
    assert "HTTP 401" in done.stderr and "CULTURESAFE_JUDGE_API_KEY" in done.stderr and SENTINEL not in done.stderr
    [results] = out["out"].rglob("results_*.json")  # lm-eval still wrote its files ...
    run = {**json.loads(results.read_text()), "_dir": str(results.parent)}
    for task in TASKS.split(","):
        rows = samples(run, task)
        assert len(rows) == 4 and all(r["resps"][0][0] is not None for r in rows)  # ... every answer kept
        judged = [judged_entries(r)[0]["respectfulness"] for r in rows]
        assert all(j["failure"] == "request_error" and "401" in j["error"] for j in judged)
        assert run["results"][task]["judge_request_errors,judge"] == 8
    written = [p for p in out["out"].rglob("*") if p.is_file()]
    assert not [p for p in written if SENTINEL.encode() in p.read_bytes()]


@pytest.mark.parametrize(("case", "expected"), [(i, expected) for i, (_, _, expected) in enumerate(UNUSABLE)])
def test_unusable_settings_fail_before_generating(case: int, expected: str, lm_eval_runs: dict[str, Future]) -> None:
    out = lm_eval_runs[f"unusable{case}"].result()
    done = out["done"]
    assert out["requests"] == 0
    assert done.returncode != 0 and expected in done.stderr
    assert "Running generate_until requests" not in done.stderr and "hf_abcdefghijklmnopqrstuv" not in done.stderr
