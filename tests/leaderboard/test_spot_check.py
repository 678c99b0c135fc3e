"""The spot check's comparison of a logged judged sample with its re-run."""

from __future__ import annotations

import json

from culturesafe_ext.leaderboard.spot_check import compare


def _row(entry: dict) -> dict:
    return {"doc_id": 3, "doc": {"judge_settings": "{}"}, "filtered_resps": [[json.dumps(entry)]]}


def _scored(score: float) -> dict:
    return {"response": "an answer", "respectfulness": {"score": score}, "awareness": {"score": score}}


def test_a_withheld_answer_withheld_again_is_the_same_and_not_asked_for_scores() -> None:
    withheld = {"response": None, "withheld": "content_filter"}
    assert compare("s.jsonl", "t", _row(withheld), _row(withheld), 0.01) == []


def test_an_answer_withheld_in_only_one_of_the_runs_differs() -> None:
    logged = {"response": "", "withheld": "empty"}
    now = {"response": "", "respectfulness": {"score": 9.0}, "awareness": {"score": 9.0}}
    [problem] = compare("s.jsonl", "t", _row(logged), _row(now), 0.01)
    assert "doc_id 3: the answer is withheld now: None, the run logged 'empty'" == problem


def test_scores_are_still_compared_for_judged_answers() -> None:
    assert compare("s.jsonl", "t", _row(_scored(6.0)), _row(_scored(6.0)), 0.01) == []
    problems = compare("s.jsonl", "t", _row(_scored(6.0)), _row(_scored(9.0)), 0.01)
    assert problems == [
        "doc_id 3: respectfulness logged 6.0, the judge now says 9.0",
        "doc_id 3: awareness logged 6.0, the judge now says 9.0",
    ]
