"""The lm-eval judge filters under issue 16 / 20 rules, in process: failure kinds counted per task, every
answer kept when the judge fails after generation, a refused or all-failed batch reported as a run failure,
and settings, secrets and the cache checked by the loaders before anything is generated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.openai_standin import Fault, StandIn, prompt_text

from culturesafe_ext.tasks import culturax as cx
from culturesafe_ext.tasks import judging
from culturesafe_ext.tasks import safety as sf
from tasks.test_culturax import _docs, hhh_responder

SENTINEL = "sk-SENTINEL-filters-41d2-never-written"


def settings(server_url: str, tmp_path: Path, **extra) -> str:
    values = {"backend": "openai", "model": "standin", "base_url": server_url, "progress": False, "max_retries": 0,
              "timeout": 2.0, "cache_path": str(tmp_path / "j.sqlite"), **extra}  # fmt: skip
    return judging.judge_settings(values)


def safety_docs(n: int, judge: str) -> list[dict]:
    return [
        {
            "description_id": f"d{i // 2}",
            "judge_custom": "Shoes off indoors.",
            "location": "Japan",
            "query": f"[q{i}] Why?",
            "variant": "plain",
            "judge_settings": judge,
        }  # fmt: skip
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def fresh_run_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judging, "_failures", [])
    judging.judge_for.cache_clear()


def kind_of(messages: list[dict]) -> str:
    text = prompt_text(messages)
    return next((k for k in ("[q0]", "[q1]", "[q2]", "[q3]") if k in text), "")


def test_safety_filter_counts_each_kind(tmp_path: Path) -> None:
    faults = [Fault("length", match="[q0]"), Fault("content_filter", match="[q1]"), Fault("prose", match="[q2]"),
              Fault("500", match="[q3]")]  # fmt: skip
    with StandIn(faults=faults, max_lifetime=60) as server:
        docs = safety_docs(6, settings(server.base_url, tmp_path))
        resps = [[f"answer {i}"] for i in range(6)]
        out = sf.JudgeFilter().apply(resps, docs)
    metrics = [sf.process_results(doc, [entries]) for doc, entries in zip(docs, out, strict=True)]
    total = {k: sum(m[k] for m in metrics) for k in (*judging.KIND_METRICS.values(), "judge_failures", "n_judged")}
    assert total == {"judge_unparseable": 2, "judge_truncated": 2, "judge_filtered": 2, "judge_request_errors": 2,
                     "judge_failures": 8, "n_judged": 4}  # fmt: skip
    cut = json.loads(out[0][0])["respectfulness"]
    assert cut["failure"] == "truncated" and cut["raw"].startswith('{"score": ')  # the raw reply is in the samples
    assert judging.run_failures() == []  # some judgements counted: the run is valid, with its failures reported


def test_safety_filter_all_failed_is_a_run_failure(tmp_path: Path) -> None:
    with StandIn(faults=[Fault("prose")], max_lifetime=60) as server:
        docs = safety_docs(3, settings(server.base_url, tmp_path))
        sf.JudgeFilter().apply([["a"], ["b"], ["c"]], docs)
    [problem] = judging.run_failures()
    assert "all 6 judgements failed (6 unparseable)" in problem and "NaN" in problem


@pytest.mark.parametrize("status", ["401", "403", "404"])
def test_refused_judge_keeps_every_answer(status: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    with StandIn(faults=[Fault(status)], max_lifetime=60) as server:
        docs = safety_docs(10, settings(server.base_url, tmp_path, concurrency=1))
        out = sf.JudgeFilter().apply([[f"answer {i}"] for i in range(10)], docs)
        sent = server.n_requests
    assert sent == 1
    entries = [json.loads(e) for row in out for e in row]
    assert [e["response"] for e in entries] == [f"answer {i}" for i in range(10)]  # nothing thrown away
    assert all(e["respectfulness"]["failure"] == "request_error" for e in entries)
    [problem] = judging.run_failures()
    assert f"HTTP {status}" in problem and SENTINEL not in problem + json.dumps(entries)


def test_judge_crash_after_generation_keeps_every_answer(tmp_path: Path) -> None:
    """Issue 20: a cache that breaks between loading and judging used to lose every generated answer."""
    with StandIn(max_lifetime=60) as server:
        docs = safety_docs(4, settings(server.base_url, tmp_path))
        (tmp_path / "j.sqlite").write_bytes(b"garbage" * 1000)  # broken after the loader's check
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"j.sqlite{suffix}").unlink(missing_ok=True)
        out = sf.JudgeFilter().apply([[f"answer {i}"] for i in range(4)], docs)
    entries = [json.loads(e) for row in out for e in row]
    assert [e["response"] for e in entries] == [f"answer {i}" for i in range(4)]
    assert all("not a usable sqlite file" in e["awareness"]["error"] for e in entries)
    metrics = [sf.process_results(doc, [row]) for doc, row in zip(docs, out, strict=True)]
    assert sum(m["judge_request_errors"] for m in metrics) == 8
    assert "the judge failed after generation" in judging.run_failures()[0]


def test_culturax_kinds_and_refusal(tmp_path: Path) -> None:
    docs = _docs(4)
    faults = [Fault("length", match="Question 1 "), Fault("content_filter", match="Question 2 ")]
    with StandIn(responder=hhh_responder, faults=faults, max_lifetime=60) as server:
        judge = settings(server.base_url, tmp_path)
        hhh = json.dumps({"seed": 1234, "wr_both_orders": False, "ss": "judge"})
        docs = [{**d, "judge_settings": judge, "hhh_settings": hhh} for d in docs]
        out = cx.HHHJudgeFilter().apply([["MODEL-ANSWER"] for _ in docs], docs)
    metrics = [cx.process_results(d, [e]) for d, e in zip(docs, out, strict=True)]
    assert [m["judge_truncated"] for m in metrics] == [0, 3, 0, 0]
    assert [m["judge_filtered"] for m in metrics] == [0, 0, 3, 0]
    assert metrics[0]["judge_failures"] == 0 and judging.run_failures() == []
    with StandIn(responder=hhh_responder, faults=[Fault("401")], max_lifetime=60) as server:
        judge = settings(server.base_url, tmp_path / "b", concurrency=1)
        docs = [{**d, "judge_settings": judge} for d in docs]
        out = cx.HHHJudgeFilter().apply([["MODEL-ANSWER"] for _ in docs], docs)
        assert server.n_requests == 1
    assert "HTTP 401" in judging.run_failures()[0]
    assert sum(cx.process_results(d, [e])["judge_request_errors"] for d, e in zip(docs, out, strict=True)) == 12


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ({"hf_token": "hf_abcdefghijklmnopqrstu"}, "metadata.hf_token"),
        ({"api_key": SENTINEL}, "metadata.api_key"),
        ({"OPENAI_API_KEY": SENTINEL}, "metadata.OPENAI_API_KEY"),
        ({"culturesafe_data": "https://hub.example/data?token=abc123"}, "query parameter 'token'"),
        ({"notes": {"auth": {"password": "hunter2"}}}, "metadata.notes.auth"),
    ],
)
def test_loader_refuses_secret_metadata_before_generating(metadata: dict, where: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret-looking metadata") as err:
        sf.load_safety(judge={"backend": "none"}, **{"culturesafe_data": "bundled", **metadata})
    assert where in str(err.value) and SENTINEL not in str(err.value)


def test_loader_checks_cache_and_transport_before_generating(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("x" * 5000)
    judge = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "cache_path": str(bad)}
    with pytest.raises(ValueError, match="not a usable sqlite file"):
        sf.load_safety(judge=judge, culturesafe_data="bundled")
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    judge = {"backend": "openai", "model": "m", "base_url": "http://judge.example.com/v1"}
    with pytest.raises(ValueError, match="plain HTTP"):
        cx.load_culturax_task(judge=judge, culturax_data="bundled")
    with pytest.raises(ValueError, match="'timeout' must be float"):
        sf.load_safety(judge={**judge, "timeout": "fast"}, culturesafe_data="bundled")


def test_knowledge_loader_refuses_secret_metadata() -> None:
    """Knowledge-only runs write their metadata into results too."""
    from culturesafe_ext.data.loader import load_adaculturesafe

    with pytest.raises(ValueError, match=r"secret-looking metadata \['metadata.api_key'\]"):
        load_adaculturesafe("knowledge_china", culturesafe_data="bundled", api_key=SENTINEL)
    assert len(load_adaculturesafe("knowledge_china", culturesafe_data="bundled", pad_token_id=2)["test"]) > 0
