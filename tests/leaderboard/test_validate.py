"""Validation reads verdicts back the way each judge wrote them (hf judge, one call for both dimensions, a
panel), without an lm_eval run; the forgery tests on a real run are in tests/e2e/test_validate.py."""

from __future__ import annotations

import json
import math

import pytest

HF = {"backend": "hf", "model": "m"}


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
    hf_row = _judged_row(0, {"respectfulness": hf, "awareness": {**hf, "dimension": "awareness"}}, HF)
    assert check_verdicts("s.jsonl", "t", [hf_row], HF, 0.05) == []
    hf_row = _judged_row(0, {"respectfulness": {**hf, "score": hf["score"] + 0.5}, "awareness": hf}, HF)
    assert "1 judge score(s) differ" in str(check_verdicts("s.jsonl", "t", [hf_row], HF, 0.05)[0])

    raw = '{"respectfulness": 8, "awareness": 3}'
    combined = {"backend": "openai", "model": "m", "both_dimensions_in_one_call": True}
    entries = {
        d: {"dimension": d, "score": s, "raw": raw, "error": None}
        for d, s in (("respectfulness", 8.0), ("awareness", 3.0))
    }
    assert check_verdicts("s.jsonl", "t", [_judged_row(0, entries, combined)], combined, 0.05) == []
    entries["awareness"]["score"] = 8.0
    assert "doc_id 0/awareness: logged 8.0" in str(
        check_verdicts("s.jsonl", "t", [_judged_row(0, entries, combined)], combined, 0.05)[0]
    )
    failed = {d: {"score": None, "raw": None, "error": "HTTP 500"} for d in ("respectfulness", "awareness")}
    [refusal] = check_verdicts("s.jsonl", "t", [_judged_row(0, failed, combined)], combined, 0.05)
    assert "the judge failed on 2 of 2 judgements (100.0%), above --max-judge-failure-rate 0.05" in str(refusal)


def _panel_row(scores: tuple[float, float], panel_score: float | None) -> dict:
    own = [{"score": x, "raw": f'{{"score": {x:g}}}', "error": None} for x in scores]
    entry = {"score": panel_score, "judges": own}
    return _judged_row(0, {"respectfulness": entry, "awareness": json.loads(json.dumps(entry))}, PANEL)


PANEL = {
    "judges": [{"backend": "openai", "model": "a"}, {"backend": "openai", "model": "b"}],
    "panel_aggregate": "mean",
}


def test_a_panel_is_read_again_judge_by_judge_and_its_score_from_theirs() -> None:
    """A judge panel logs each judge's own result under ``judges``: each raw reply is re-read, and the panel's
    score is the aggregate of those re-read verdicts (not the logged panel score)."""
    from culturesafe_ext.leaderboard.judging import check_verdicts

    assert check_verdicts("s.jsonl", "t", [_panel_row((4.0, 6.0), 5.0)], PANEL, 0.05) == []
    row = _panel_row((4.0, 6.0), 5.0)
    entry = json.loads(row["filtered_resps"][0][0])
    entry["respectfulness"]["judges"][1]["score"] = 9.0
    entry["respectfulness"]["score"] = 6.5
    row["filtered_resps"] = [[json.dumps(entry)]]
    assert "doc_id 0/respectfulness (judge 2 of the panel): logged 9.0" in str(
        check_verdicts("s.jsonl", "t", [row], PANEL, 0.05)[0]
    )
    # the forgery: the panel's score edited to 10, each judge's own verdict left as it was
    [refusal] = check_verdicts("s.jsonl", "t", [_panel_row((6.3, 4.6), 10.0)], PANEL, 0.05)
    assert "2 judge score(s) differ" in str(refusal)
    assert (
        "doc_id 0/respectfulness (the panel): logged 10.0, the mean of its judges' re-read verdicts [6.3, 4.6]"
        in str(refusal)
    )
    median = {**PANEL, "panel_aggregate": "median"}  # the aggregate is the run's setting, not the entry's
    assert check_verdicts("s.jsonl", "t", [_panel_row((4.0, 6.0), 5.0)], median, 0.05) == []


@pytest.mark.parametrize(
    "form",
    [
        {"score": None, "raw": '{"score": 7}'},
        {"score": math.nan, "raw": '{"score": 7}'},
        {"raw": '{"score": 7}'},
        {"score": 7.0, "raw": '{"score": 7}', "failure": "request_error"},
        {"score": 7.0, "raw": '{"score": 7}', "error": "HTTP 500"},
        {"score": "7", "raw": '{"score": 7}'},
        None,
    ],
    ids=["null", "nan", "missing", "failure-kind", "error", "text", "no-entry"],
)
def test_a_failed_judgement_is_counted_in_every_form_a_writer_could_log(form: dict | None) -> None:
    from culturesafe_ext.leaderboard.judging import check_verdicts, failure_of

    assert failure_of(form) is not None
    good = {"score": 7.0, "raw": '{"score": 7}', "error": None}
    row = _judged_row(0, {"respectfulness": form, "awareness": good}, {"backend": "openai", "model": "m"})
    found = "\n".join(map(str, check_verdicts("s.jsonl", "t", [row], {"backend": "openai", "model": "m"}, 0.05)))
    assert "the judge failed on 1 of 2 judgements (50.0%)" in found
    assert failure_of(good) is None


def test_the_docs_judge_settings_must_be_present_and_equal_the_logged_metadata() -> None:
    from culturesafe_ext.leaderboard.judging import check_settings

    judge = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    config = {"metadata": {"judge": judge}}
    from culturesafe_ext.judge.settings import judge_or_panel

    resolved = judge_or_panel(judge, env={}).to_dict()
    row = _judged_row(3, {}, resolved)
    settings, found = check_settings("s.jsonl", "r.json", "t", config, [row])
    assert found == [] and settings == resolved
    del row["doc"]["judge_settings"]
    settings, [refusal] = check_settings("s.jsonl", "r.json", "t", config, [row])
    assert settings is None and str(refusal) == "s.jsonl: task 't': doc_id 3: no judge_settings logged in the doc"
    other = _judged_row(3, {}, {**resolved, "model": "other"})
    settings, [refusal] = check_settings("s.jsonl", "r.json", "t", config, [other])
    assert "doc_id 3: judge_settings names the judge" in str(refusal) and "'model': 'other'" in str(refusal)
