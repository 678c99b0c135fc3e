"""Validation reads verdicts back the way each judge wrote them (hf judge, one call for both dimensions, a
panel), without an lm_eval run; the forgery tests on a real run are in tests/e2e/test_validate.py."""

from __future__ import annotations

import json


def _judged_row(doc_id: int, results: dict[str, dict], settings: dict) -> dict:
    doc = {"judge_custom": "custom", "location": "China", "query": "q", "judge_settings": json.dumps(settings)}
    return {"doc_id": doc_id, "doc": doc, "filtered_resps": [[json.dumps({"response": "answer", **results})]]}


def test_verdicts_of_the_hf_judge_and_of_one_call_for_both_dimensions_are_read_again() -> None:
    """Unit level: the probabilities the hf judge logs, and a combined reply, give back the logged scores."""
    from culturesafe_ext.judge import JudgeItem
    from culturesafe_ext.judge.judge import interpret
    from culturesafe_ext.leaderboard.judging import check_verdicts
    from culturesafe_ext.llm.backends import Reply

    weights = [1 / 7, 1 / 9, 1 / 3, 1 / 11, 1 / 13, 1 / 6, 1 / 17, 1 / 19, 1 / 23, 1 / 29]
    probs = [w / sum(weights) for w in weights]  # many decimals: the logged ones are rounded to 6
    item = JudgeItem("custom", "China", "q", "answer", "respectfulness")
    hf = interpret(item, Reply(probs=probs, mass=0.97)).to_dict()
    hf_row = _judged_row(0, {"respectfulness": hf}, {"backend": "hf", "model": "m"})
    assert check_verdicts("s.jsonl", "t", [hf_row], 0.05) == []
    hf["score"] += 0.5
    hf_row = _judged_row(0, {"respectfulness": hf}, {"backend": "hf", "model": "m"})
    assert "1 judge score(s) differ" in str(check_verdicts("s.jsonl", "t", [hf_row], 0.05)[0])

    raw = '{"respectfulness": 8, "awareness": 3}'
    combined = {"backend": "openai", "model": "m", "both_dimensions_in_one_call": True}
    entries = {
        d: {"dimension": d, "score": s, "raw": raw, "error": None}
        for d, s in (("respectfulness", 8.0), ("awareness", 3.0))
    }
    assert check_verdicts("s.jsonl", "t", [_judged_row(0, entries, combined)], 0.05) == []
    entries["awareness"]["score"] = 8.0
    assert "doc_id 0/awareness: logged 8.0" in str(
        check_verdicts("s.jsonl", "t", [_judged_row(0, entries, combined)], 0.05)[0]
    )
    failed = {"respectfulness": {"score": None, "raw": None, "error": "HTTP 500"}}
    [refusal] = check_verdicts("s.jsonl", "t", [_judged_row(0, failed, combined)], 0.05)
    assert "the judge failed on 1 of 1 judgements (100.0%), above --max-judge-failure-rate 0.05" in str(refusal)


def test_a_panel_is_read_again_judge_by_judge() -> None:
    """A judge panel logs each judge's own result under ``judges``: each raw reply is re-read."""
    from culturesafe_ext.leaderboard.judging import check_verdicts

    members = [{"backend": "openai", "model": "a"}, {"backend": "openai", "model": "b"}]
    own = [{"score": 4.0, "raw": '{"score": 4}', "error": None}, {"score": 6.0, "raw": '{"score": 6}', "error": None}]
    panel = {"judges": members, "panel_aggregate": "mean"}
    row = _judged_row(0, {"respectfulness": {"score": 5.0, "judges": own}}, panel)
    assert check_verdicts("s.jsonl", "t", [row], 0.05) == []
    own[1]["score"] = 9.0
    row = _judged_row(0, {"respectfulness": {"score": 6.5, "judges": own}}, panel)
    assert "doc_id 0/respectfulness (judge 2 of the panel): logged 9.0" in str(
        check_verdicts("s.jsonl", "t", [row], 0.05)[0]
    )
