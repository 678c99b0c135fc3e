"""Safety tasks end to end: the real lm_eval CLI, judged through the stand-in server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OFFLINE_ENV, run_lm_eval
from support.openai_standin import Fault, StandIn

pytestmark = pytest.mark.e2e
SENTINEL = "sk-culturesafe-SENTINEL-7c1e"
TASKS = "adaculturesafe_safety_china,adaculturesafe_safety_wrongcustom_china"


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


def lm_eval_args(model: Path, metadata: dict, limit: int = 4) -> list[str]:
    return [
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model}",
        "--tasks",
        TASKS,
        "--limit",
        str(limit),
        "--metadata",
        json.dumps(metadata),
        "--gen_kwargs",
        "max_gen_toks=8",
        "--log_samples",
    ]


def judged_entries(row: dict) -> list[dict]:
    """The judge filter's output for one logged sample: one JSON object per response."""
    return [json.loads(e) for e in row["filtered_resps"][0]]


def samples(run: dict, task: str) -> list[dict]:
    [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_faults_are_counted_and_the_key_is_nowhere(tiny_model: Path, tmp_path: Path) -> None:
    faults = [
        Fault("429", rate=0.3, first_n=1, retry_after=0.1),
        Fault("500", rate=0.2, first_n=1),
        Fault("drop", rate=0.1, first_n=1),
        Fault("garbage", rate=0.15),
        Fault("out_of_range", rate=0.1),
    ]
    cache = tmp_path / "judge.sqlite"
    with StandIn(latency=0.01, faults=faults, hang_seconds=3, max_lifetime=600) as server:
        meta = {"culturesafe_data": "bundled", "judge": judge_settings(server, cache)}
        run = run_lm_eval(lm_eval_args(tiny_model, meta), tmp_path, env={"CULTURESAFE_JUDGE_API_KEY": SENTINEL})
        assert server.authorizations[f"Bearer {SENTINEL}"] > 0  # the key was sent ...
        served = dict(server.faults_served)
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
    written = [p for p in [*Path(run["_dir"]).rglob("*"), *tmp_path.glob("judge.sqlite*")] if p.is_file()]
    assert written and not [p for p in written if SENTINEL.encode() in p.read_bytes()]  # ... and is on no disk
    assert SENTINEL not in run["_stdout"]


def test_wrong_custom_reaches_the_judge(tiny_model: Path, tmp_path: Path) -> None:
    with StandIn(max_lifetime=300) as server:
        meta = {"culturesafe_data": "bundled", "judge": judge_settings(server, tmp_path / "c.sqlite")}
        run = run_lm_eval(lm_eval_args(tiny_model, meta, limit=10), tmp_path)
    plain, wrong = (samples(run, t) for t in TASKS.split(","))
    for a, b in zip(plain, wrong, strict=True):
        assert a["doc"]["judge_custom"] == a["doc"]["description"]
        assert b["doc"]["judge_custom"] != b["doc"]["description"]
        assert a["resps"] == b["resps"]  # same greedy answers: only the custom shown to the judge differs


def test_no_judge_fails_before_generating(tiny_model: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CULTURESAFE_JUDGE_")}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "lm_eval"),
            "run",
            *lm_eval_args(tiny_model, {"culturesafe_data": "bundled"}),
            "--output_path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env={**env, **OFFLINE_ENV},
        timeout=600,
    )
    assert done.returncode != 0
    assert "No judge is configured" in done.stderr and '"backend": "none"' in done.stderr
    assert "Running generate_until requests" not in done.stderr and not (tmp_path / "out").exists()


def test_judge_none_logs_responses_and_rejudge_compares_judges(tiny_model: Path, tmp_path: Path) -> None:
    run = run_lm_eval(
        lm_eval_args(tiny_model, {"culturesafe_data": "bundled", "judge": {"backend": "none"}}, 3), tmp_path
    )
    assert run["results"]["adaculturesafe_safety_china"]["n_judged,judge"] == 0
    assert all(r["resps"][0][0] is not None for r in samples(run, "adaculturesafe_safety_china"))
    with StandIn(max_lifetime=300) as server:
        settings = [
            json.dumps(judge_settings(server, tmp_path / "j.sqlite", progress=False)),
            json.dumps(
                {"backend": "hf", "model": str(tiny_model), "cache_path": str(tmp_path / "h.sqlite"), "progress": False}
            ),
        ]
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "culturesafe"),
                "judge",
                run["_dir"],
                "--judge",
                settings[0],
                "--judge",
                settings[1],
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **OFFLINE_ENV},
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        assert server.n_requests == 2 * 2 * 3  # 2 tasks x 3 samples x 2 dimensions, nothing generated again
    report = json.loads((Path(run["_dir"]) / "rejudge.json").read_text())
    assert [j["judge"]["backend"] for j in report["judges"]] == ["openai", "hf"]
    assert report["judges"][0]["tasks"]["adaculturesafe_safety_china"]["n_judged"] == 6
    pair = report["agreement"]["0-1"]["respectfulness"]
    assert pair["n"] == 6 and {"spearman_rho", "exact", "within_1"} <= set(pair)


def lm_eval_raw(args: list[str], out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "lm_eval"), "run", *args, "--output_path", str(out)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, **OFFLINE_ENV, **(env or {})}
    )


def test_refused_judge_stops_keeps_the_answers_and_exits_non_zero(tiny_model: Path, tmp_path: Path) -> None:
    """Issue 20: a judge answering 401 to everything got every prompt, and lm_eval exited 0 with NaN."""
    with StandIn(faults=[Fault("401")], max_lifetime=600) as server:
        judge = judge_settings(server, tmp_path / "judge.sqlite", concurrency=1)
        meta = {"culturesafe_data": "bundled", "judge": judge}
        env = {"CULTURESAFE_JUDGE_API_KEY": SENTINEL}
        done = lm_eval_raw(lm_eval_args(tiny_model, meta), tmp_path / "out", env=env)
        sent = server.n_requests
    assert done.returncode == 3, done.stderr[-3000:]
    assert sent == 2  # one per task: each stops at its first refusal (16 requests before)
    assert "HTTP 401" in done.stderr and "CULTURESAFE_JUDGE_API_KEY" in done.stderr and SENTINEL not in done.stderr
    [results] = (tmp_path / "out").rglob("results_*.json")  # lm-eval still wrote its files ...
    run = {**json.loads(results.read_text()), "_dir": str(results.parent)}
    for task in TASKS.split(","):
        rows = samples(run, task)
        assert len(rows) == 4 and all(r["resps"][0][0] is not None for r in rows)  # ... every answer kept
        judged = [judged_entries(r)[0]["respectfulness"] for r in rows]
        assert all(j["failure"] == "request_error" and "401" in j["error"] for j in judged)
        assert run["results"][task]["judge_request_errors,judge"] == 8
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not [p for p in written if SENTINEL.encode() in p.read_bytes()]


@pytest.mark.parametrize(
    ("judge_extra", "metadata_extra", "expected"),
    [
        ({"cache_path": "CORRUPT"}, {}, "not a usable sqlite file"),
        ({}, {"hf_token": "hf_abcdefghijklmnopqrstuv"}, "secret-looking metadata ['metadata.hf_token']"),
    ],
)
def test_unusable_settings_fail_before_generating(
    judge_extra: dict, metadata_extra: dict, expected: str, tiny_model: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_text("not a database\n" * 200)
    with StandIn(max_lifetime=600) as server:
        judge = judge_settings(server, tmp_path / "judge.sqlite")
        judge.update({k: str(corrupt) if v == "CORRUPT" else v for k, v in judge_extra.items()})
        meta = {"culturesafe_data": "bundled", "judge": judge, **metadata_extra}
        done = lm_eval_raw(lm_eval_args(tiny_model, meta), tmp_path / "out")
        assert server.n_requests == 0
    assert done.returncode != 0 and expected in done.stderr
    assert "Running generate_until requests" not in done.stderr and "hf_abcdefghijklmnopqrstuv" not in done.stderr
