"""Counting (issue 28 item 5): withheld answers of the evaluated model are counted and never judged; a judge server
that sends no token usage makes the cost unknown (NaN, with a warning naming it), not 0; re-judging skips lm-eval's
data-parallel padding copies and rounds half up like the rest of the project."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from support.openai_standin import StandIn

from culturesafe_ext.analysis.rejudge import agreement, logged_answers
from culturesafe_ext.tasks import culturax as cx
from culturesafe_ext.tasks import judging
from culturesafe_ext.tasks import safety as sf
from tasks.test_culturax import MODEL_MARK, _docs, hhh_responder
from tasks.test_judge_filters import safety_docs, settings


@pytest.fixture(autouse=True)
def fresh_run_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judging, "_failures", [])
    monkeypatch.setattr(judging, "_warnings", [])
    judging.judge_for.cache_clear()


def test_withheld_safety_answers_are_counted_not_judged(tmp_path: Path) -> None:
    with StandIn(max_lifetime=60) as server:
        docs = safety_docs(4, settings(server.base_url, tmp_path))
        resps = [[None], [""], ["  \n"], ["a real answer"]]  # content null, a filter's "", blank, an answer
        out = sf.JudgeFilter().apply(resps, docs)
        assert server.n_requests == 2  # only the real answer, on both dimensions
    metrics = [sf.process_results(doc, [entries]) for doc, entries in zip(docs, out, strict=True)]
    assert [m["answers_withheld"] for m in metrics] == [1, 1, 1, 0]
    assert [m["judge_failures"] for m in metrics] == [0, 0, 0, 0] and metrics[3]["n_judged"] == 2
    assert metrics[0]["respectfulness"] == ("d0", None) and metrics[3]["respectfulness"][1] is not None
    assert json.loads(out[0][0])["withheld"].startswith("not judged: the model gave no answer")
    assert not judging.run_failures()  # a withheld answer is the model's doing, not a judge failure


def test_withheld_culturax_answers_are_counted_not_judged(tmp_path: Path) -> None:
    from tasks.test_culturax import _judge

    docs = _docs(2)
    resps = [[None, f"{MODEL_MARK} a"], ["", ""]]
    with StandIn(responder=hhh_responder) as server:
        hhh = {"seed": 1, "wr_both_orders": False, "ss": "judge"}
        judged = cx.judge_answers(_judge(server, tmp_path / "j.sqlite"), hhh, docs, resps)
        assert server.n_requests == 3  # WR + SS + TI for the one real answer
    metrics = [cx.process_results(d, [[json.dumps(e) for e in es]]) for d, es in zip(docs, judged, strict=True)]
    assert [m["answers_withheld"] for m in metrics] == [1, 2]
    assert metrics[0]["judge_failures"] == 0 and metrics[0]["wr"] == 1.0 and metrics[1]["wr"] is None


def test_a_judge_without_usage_makes_the_cost_unknown_and_says_so(tmp_path: Path, caplog) -> None:
    price = {"price_per_million": {"input": 1.0, "output": 2.0}}
    with StandIn(send_usage=False, max_lifetime=60) as server, caplog.at_level(logging.WARNING, "culturesafe.llm"):
        docs = safety_docs(2, settings(server.base_url, tmp_path, **price))
        out = sf.JudgeFilter().apply([["answer 0"], ["answer 1"]], docs)
        url = server.base_url
    metrics = [sf.process_results(doc, [entries]) for doc, entries in zip(docs, out, strict=True)]
    assert all(math.isnan(m["judge_cost"]) for m in metrics) and all(m["judge_failures"] == 0 for m in metrics)
    [warning] = [r.getMessage() for r in caplog.records if "no token usage" in r.getMessage()]
    assert url in warning and "4 of 4 replies" in warning and "unknown" in warning
    with StandIn(max_lifetime=60) as server:  # a server that sends usage: a real cost, no warning
        docs = safety_docs(2, settings(server.base_url, tmp_path / "other", **price))
        out = sf.JudgeFilter().apply([["answer 0"], ["answer 1"]], docs)
    metrics = [sf.process_results(doc, [entries]) for doc, entries in zip(docs, out, strict=True)]
    assert all(m["judge_cost"] > 0 for m in metrics)


def test_rejudge_reads_the_answers_without_padding_copies() -> None:
    row = {"resps": [["a", "a"]], "filtered_resps": [['{"response": "a"}']]}  # one real answer, one padding copy
    assert logged_answers(row) == ["a"]
    assert logged_answers({"resps": [["a", "b"]]}) == ["a", "b"]


def test_agreement_rounds_half_up() -> None:
    """6.5 and 7 are the same point half up (Python's round would make 6.5 a 6: half to even)."""
    a = {"x": 6.5, "y": 2.5, "z": 1.0}
    b = {"x": 7.0, "y": 3.0, "z": 1.0}
    assert agreement(a, b)["exact"] == 1.0


def test_a_failure_rate_above_the_validators_ceiling_warns_with_kinds_and_fixes(tmp_path: Path) -> None:
    from support.openai_standin import Fault

    from culturesafe_ext.leaderboard.policy import MAX_JUDGE_FAILURE_RATE

    assert judging.WARN_FAILURE_RATE == MAX_JUDGE_FAILURE_RATE  # one threshold, kept in two rooms
    with StandIn(faults=[Fault("length", match="[q0]"), Fault("prose", match="[q1]")], max_lifetime=60) as server:
        docs = safety_docs(4, settings(server.base_url, tmp_path, max_tokens=48))
        sf.JudgeFilter().apply([[f"answer {i}"] for i in range(4)], docs)
    [warning] = judging.run_warnings()
    assert "failed on 4 of 8 judgements (50.0%: " in warning and "2 truncated" in warning and "2 unparseable" in warning
    assert "raise the judge's max_tokens (now 48)" in warning and '"structured": true' in warning
    assert not judging.run_failures()


def test_a_failure_rate_within_the_ceiling_does_not_warn() -> None:
    assert judging.failure_rate_warning("t", 100, {"truncated": 5}) is None
    assert "5 truncated, 1 filtered" in judging.failure_rate_warning("t", 100, {"truncated": 5, "filtered": 1})
