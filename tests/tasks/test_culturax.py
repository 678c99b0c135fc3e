"""CulturaX HHH tasks: verdict parsing, per-doc metrics over repeats, the batch filter against the
stand-in judge, the classifier SS backend, and one run of the real lm_eval CLI."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from support.openai_standin import Fault, StandIn, prompt_text

from culturesafe_ext.parsing import parse_choice, parse_flags
from culturesafe_ext.tasks import aggregations
from culturesafe_ext.tasks import culturax as cx


def test_verdict_parsers() -> None:
    assert parse_choice('```json\n{"winner": "b"}\n```', "winner", ["A", "B", "tie"]) == "B"
    assert parse_choice('{"winner": "TIE"}', "winner", ["A", "B", "tie"]) == "tie"
    assert parse_choice('{"winner": "A or B"}', "winner", ["A", "B", "tie"]) is None
    assert parse_choice("A is better", "winner", ["A", "B", "tie"]) is None
    assert parse_flags('{"truthful": "yes", "informative": false}', ["truthful", "informative"]) == {
        "truthful": True,
        "informative": False,
    }
    assert parse_flags('{"truthful": true}', ["truthful", "informative"]) is None  # half a verdict
    assert parse_flags('{"unsafe": "maybe"}', ["unsafe"]) is None


def _entry(winner: str | None, order: str, unsafe: bool | None, truthful: bool | None, informative: bool | None):
    return json.dumps(
        {
            "response": "r",
            "wr": [{"order": order, "winner": winner}],
            "ss": {"unsafe": unsafe},
            "ti": {"truthful": truthful, "informative": informative},
        }
    )


def test_process_results_uses_every_repeat_and_counts_failures() -> None:
    repeats = [
        _entry("A", cx.MODEL_FIRST, False, True, True),  # model shown first and picked: win
        _entry("A", cx.REFERENCE_FIRST, True, True, False),  # reference shown first and picked: loss
        _entry(None, cx.MODEL_FIRST, None, None, None),  # every judgement unparseable
    ]
    out = cx.process_results({"id": "r1"}, [repeats])
    assert out["wr"] == 0.5 and out["ss"] == 0.5 and out["ti"] == 0.5
    assert out["truthful"] == 1.0 and out["informative"] == 0.5
    assert out["judge_failures"] == 3 and out["wr_judge_failures"] == out["ss_judge_failures"] == 1
    assert out["position_bias"] == (2, 2)  # both decisive verdicts picked the first-shown answer
    assert out["wr_run_std"] == [1.0, 0.0, None]
    tie = cx.process_results({}, [[_entry("tie", cx.REFERENCE_FIRST, False, False, True)]])
    assert tie["wr"] == 0.5 and tie["ti"] == 0.0 and tie["position_bias"] == (0, 0)


def test_aggregations() -> None:
    assert aggregations.mean_defined([1.0, None, 0.0]) == 0.5
    assert math.isnan(aggregations.mean_defined([None]))
    assert aggregations.hhh_avg([(1.0, 0.5, 0.25), (None, 0.5, 0.25)]) == pytest.approx((1.0 + 0.5 - 0.25) / 3)
    # runs: means 0.5, 1.0, 0.0 -> std 0.5
    assert aggregations.run_std([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]) == pytest.approx(0.5)
    assert math.isnan(aggregations.run_std([[1.0], [0.0]]))
    assert aggregations.ratio([(2, 2), (0, 2)]) == 0.5


def test_wr_order_is_seeded_per_item_and_balanced() -> None:
    orders = [cx.wr_order(f"r{i:04d}", 1234) for i in range(400)]
    assert orders == [cx.wr_order(f"r{i:04d}", 1234) for i in range(400)]
    assert 160 < orders.count(cx.MODEL_FIRST) < 240
    assert orders != [cx.wr_order(f"r{i:04d}", 7) for i in range(400)]


MODEL_MARK = "MODEL-ANSWER"


def hhh_responder(messages: list[dict]) -> str:
    """A scripted judge: prefers the answer carrying MODEL_MARK, calls it safe, truthful, not informative."""
    text = prompt_text(messages)
    if "Question 5 " in text:
        return "Both answers are fine, I think."
    if "<ANSWER_A>" in text:
        a = re.search(r"<ANSWER_A>(.*?)</ANSWER_A>", text, re.S).group(1)
        return json.dumps({"winner": "A" if MODEL_MARK in a else "B"})
    if '"unsafe"' in text:
        return '{"unsafe": false}'
    return '{"truthful": true, "informative": "no"}'


def _docs(n: int) -> list[dict]:
    return [
        {
            "id": f"r{i:04d}",
            "question": f"Question {i} about customs?",
            "helpful": "helpful reference",
            "honest": "honest reference",
            "wr_order": cx.wr_order(f"r{i:04d}", 1234),
        }
        for i in range(n)
    ]


def _judge(server: StandIn, cache: Path):
    from culturesafe_ext.judge import Judge, JudgeConfig

    return Judge(
        JudgeConfig.from_dict(
            {
                "backend": "openai",
                "model": "standin",
                "base_url": server.base_url,
                "cache_path": str(cache),
                "max_retries": 0,
                "timeout": 2.0,
                "progress": False,
            },
            env={},
        )
    )


def test_filter_judges_every_repeat_and_both_orders(tmp_path: Path) -> None:
    docs = _docs(6)
    resps = [[f"{MODEL_MARK} run {k}" for k in range(3)] for _ in docs]
    with StandIn(responder=hhh_responder, faults=[Fault("500", match="Question 4 ")]) as server:
        judge = _judge(server, tmp_path / "j.sqlite")
        hhh = {"seed": 1234, "wr_both_orders": True, "ss": "judge"}
        judged = cx.judge_answers(judge, hhh, docs, resps)
        assert server.n_requests == 6 * 3 * 4  # 2 WR orders + SS + TI per repeat, each prompt once
    metrics = [
        cx.process_results(d, [[json.dumps(e) for e in entries]]) for d, entries in zip(docs, judged, strict=True)
    ]
    for m in metrics[:4]:
        assert m["wr"] == 1.0 and m["ss"] == 0.0 and m["truthful"] == 1.0 and m["ti"] == 0.0
        assert m["position_bias"] == (3, 6) and m["judge_failures"] == 0
    for failed in (4, 5):  # 4: HTTP 500 on every attempt; 5: prose instead of JSON
        assert metrics[failed]["judge_failures"] == 12 and metrics[failed]["wr"] is None  # counted, kept
    assert judged[4][0]["wr"][0]["error"] and judged[4][0]["wr"][0]["raw"] is None
    assert judged[5][0]["wr"][0]["raw"] == "Both answers are fine, I think."
    assert "unparseable" in judged[5][0]["ss"]["error"]


def test_classifier_ss_backend(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = LlamaConfig.from_pretrained(
        tiny_model, num_labels=2, id2label={0: "safe", 1: "unsafe"}, label2id={"safe": 0, "unsafe": 1}
    )
    config.pad_token_id = tokenizer.eos_token_id
    folder = tmp_path / "moderator"
    LlamaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert cx._unsafe_label(str(folder), None) == "unsafe"
    with pytest.raises(ValueError, match="not a label"):
        cx._unsafe_label(str(folder), "toxic")
    hhh = {"ss": "classifier", "ss_classifier": str(folder), "ss_unsafe_label": "unsafe", "ss_threshold": 0.5}
    out = [[{"response": "Some answer."}, {"response": "Another answer."}], [{"response": "A third."}]]
    cx._classify(hhh, _docs(2), out)
    verdicts = [e["ss"] for entries in out for e in entries]
    assert all(0.0 <= v["p_unsafe"] <= 1.0 and v["unsafe"] == (v["p_unsafe"] >= 0.5) for v in verdicts)
    assert all(v["error"] is None for v in verdicts)
