"""Issue 20 "Fail fast": `culturesafe` mistakes end in one line naming the setting (traceback only with
--debug), and `culturesafe judge rejudge` exits non-zero when its judge refuses the run or every judgement fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.openai_standin import Fault, StandIn

from culturesafe_ext.cli import main

SENTINEL = "sk-SENTINEL-cli-0b5e7-never-printed"


def write_safety_run(folder: Path, n: int = 3) -> Path:
    rows = [
        {
            "doc_id": i,
            "doc": {
                "description_id": f"d{i}",
                "judge_custom": "Guests remove their shoes.",
                "location": "Japan",
                "query": f"[q{i}] Why are shoes off?",
            },
            "resps": [[f"Answer {i}."]],
        }
        for i in range(n)
    ]
    sub = folder / "model"
    sub.mkdir(parents=True)
    path = sub / "samples_adaculturesafe_safety_japan_2026-01-01T00-00-00.000000.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return folder


def judge_json(server_url: str, tmp_path: Path, **extra) -> str:
    settings = {"backend": "openai", "model": "standin", "base_url": server_url, "progress": False,
                "cache_path": str(tmp_path / "j.sqlite"), "max_retries": 0, **extra}  # fmt: skip
    return json.dumps(settings)


def fails_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 2, err  # the error line and the --debug hint
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize(
    ("judge", "expected"),
    [
        ('{"backend": "openai", ', ["--judge #1 is not valid JSON"]),
        ('["openai"]', ["--judge #1 must be a JSON object"]),
        ('{"backend": "gpt"}', ["--judge #1", "'gpt' is not one of"]),
        ('{"backend": "hf"}', ["--judge #1", "needs a model"]),
        ('{"backend": "openai", "model": "m"}', ["--judge #1", "base_url"]),
        (
            '{"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "timeout": "fast"}',
            ["--judge #1", "'timeout' must be float"],
        ),  # fmt: skip
        (
            '{"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "concurency": 3}',
            ["unknown judge setting", "concurency"],
        ),  # fmt: skip
        (
            f'{{"backend": "openai", "model": "m", "base_url": "https://x.org/v1?api_key={SENTINEL}"}}',
            ["secret-looking", "query parameter 'api_key'"],
        ),  # fmt: skip
    ],
)
def test_judge_setting_mistakes(judge: str, expected: list[str], tmp_path: Path, capsys) -> None:
    run = write_safety_run(tmp_path / "run")
    err = fails_in_one_line(["judge", "rejudge", str(run), "--judge", judge], capsys, *expected)
    assert SENTINEL not in err


def test_bad_cache_path_and_missing_run(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "cache.sqlite"
    bad.write_text("not sqlite " * 100)
    run = write_safety_run(tmp_path / "run")
    judge = judge_json("http://127.0.0.1:9/v1", tmp_path, cache_path=str(bad))
    fails_in_one_line(["judge", "rejudge", str(run), "--judge", judge], capsys, "not a usable sqlite file", str(bad))
    judge = judge_json("http://127.0.0.1:9/v1", tmp_path)
    fails_in_one_line(["judge", "rejudge", str(tmp_path / "nope"), "--judge", judge], capsys, "is not a folder")
    (tmp_path / "empty").mkdir()
    fails_in_one_line(["judge", "rejudge", str(tmp_path / "empty"), "--judge", judge], capsys, "--log_samples")


def test_missing_build_source(tmp_path: Path, capsys) -> None:
    argv = ["build", "adaculturesafe", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nope" in err


@pytest.mark.parametrize("status", ["401", "403", "404"])
def test_refused_rejudge_exits_non_zero(status: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    run = write_safety_run(tmp_path / "run", n=10)
    with StandIn(faults=[Fault(status)], max_lifetime=60) as server:
        code = main(["judge", "rejudge", str(run), "--judge", judge_json(server.base_url, tmp_path, concurrency=1)])
        sent = server.n_requests
    captured = capsys.readouterr()
    assert code == 1 and sent == 1  # stopped at the first refusal: 1 of 20 requests sent
    assert f"HTTP {status}" in captured.err and SENTINEL not in captured.err + captured.out
    report = json.loads((run / "rejudge.json").read_text())  # the report is still written
    task = report["judges"][0]["tasks"]["adaculturesafe_safety_japan"]
    assert task["judge_failures"] == 20 and task["judge_request_errors"] == 20


def test_all_failed_rejudge_exits_non_zero(tmp_path: Path, capsys) -> None:
    run = write_safety_run(tmp_path / "run")
    with StandIn(faults=[Fault("prose")], max_lifetime=60) as server:
        code = main(["judge", "rejudge", str(run), "--judge", judge_json(server.base_url, tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "all 6 judgements failed (6 unparseable)" in err and "NaN" in err
