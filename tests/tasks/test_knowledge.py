"""Knowledge scoring hooks: CircularEval rotations, per-description means, lm-eval's acc definitions."""

from __future__ import annotations

import math

import datasets
import pytest

from culturesafe_ext.tasks import aggregations, knowledge


def doc(i: int, desc: str, gold: int = 1, n: int = 4) -> dict:
    options = [f"opt{i}-{k}" for k in range(n)]
    return {
        "id": f"Q{i}",
        "description_id": desc,
        "question": f"q{i}",
        "options": options,
        "gold_index": gold,
        "gold_letter": "ABCDEFGH"[gold],
        "country": "China",
    }


def test_rotations_move_the_gold_with_its_option() -> None:
    rows = datasets.Dataset.from_list([doc(0, "d0", gold=1), doc(1, "d0", gold=3, n=5)])
    rotated = knowledge.process_docs_circular(rows)
    assert len(rotated) == 4 + 5
    for row in rotated:
        original = doc(int(row["id"][1:]), "d0", gold=1 if row["id"] == "Q0" else 3, n=row["n_rotations"])
        assert row["options"][row["gold_index"]] == original["options"][original["gold_index"]]
        assert row["gold_letter"] == "ABCDE"[row["gold_index"]]
    # every option visits every position exactly once
    q0 = [r["options"] for r in rotated if r["id"] == "Q0"]
    assert all(sorted(col) == sorted(q0[0]) for col in zip(*q0, strict=True))
    assert sorted(r["gold_index"] for r in rotated if r["id"] == "Q0") == [0, 1, 2, 3]


def test_circular_acc_counts_a_question_only_if_every_rotation_is_right() -> None:
    items = [("Q0", "d0", 1, 4)] * 4 + [("Q1", "d0", 1, 4)] * 3 + [("Q1", "d0", 0, 4)] + [("Q2", "d1", 1, 4)] * 4
    assert aggregations.circular_acc(items) == pytest.approx(2 / 3)
    # per description first: d0 = 1/2, d1 = 1 -> 0.75 (a plain mean would say 2/3)
    assert aggregations.circular_acc_by_description(items) == pytest.approx(0.75)


def test_incomplete_rotations_are_left_out_and_logged(caplog) -> None:
    items = [("Q0", "d0", 1, 4)] * 4 + [("Q1", "d0", 1, 4)] * 2
    assert aggregations.circular_acc(items) == 1.0
    assert "1 of 2 questions lack some rotations" in caplog.text


def test_mean_by_description() -> None:
    assert aggregations.mean_by_description([("a", 1), ("a", 0), ("a", 0), ("b", 1)]) == pytest.approx((1 / 3 + 1) / 2)
    assert math.isnan(aggregations.mean_by_description([]))


def test_mc_results_match_lm_eval_definitions() -> None:
    d = doc(0, "d0", gold=2)
    d["options"] = ["a", "b", "cccccccccc", "d"]
    # raw argmax picks option 1; per-character normalisation picks the long option 2 (gold)
    out = knowledge.process_results_mc(d, [(-9.0, False), (-5.0, False), (-6.0, False), (-8.0, False)])
    assert out["acc"] == 0.0 and out["acc_norm"] == 1.0
    assert out["acc_by_description"] == ("d0", 0.0)


@pytest.mark.parametrize(
    ("response", "acc", "invalid"),
    [('{"answer": "C"}', 1.0, 0.0), ('{"answer": "B/C"}', 0.0, 1.0), ('{"answer": "A"}', 0.0, 0.0)],
)
def test_gen_results_exact(response: str, acc: float, invalid: float) -> None:
    out = knowledge.process_results_gen(doc(0, "d0", gold=2), [response])
    assert (out["acc"], out["invalid_rate"]) == (acc, invalid)


def test_gen_prompt_lists_every_option_with_its_letter() -> None:
    text = knowledge.doc_to_text_gen(doc(3, "d", n=5))
    assert "E. opt3-4" in text and '{"answer": letter}' in text and "A, B, C, D, E" in text


def test_gen_accepts_a_letter_with_its_own_text_and_reports_the_share() -> None:
    d = doc(0, "d0", gold=2)  # options opt0-0 .. opt0-3, gold C
    rows = [
        knowledge.process_results_gen(d, [r])
        for r in ('{"answer": "C. opt0-2"}', '{"answer": "C"}', '{"answer": "B. opt0-2"}', '{"answer": "B. opt0-1"}')
    ]
    assert [r["acc"] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert [r["invalid_rate"] for r in rows] == [0.0, 0.0, 1.0, 0.0]
    assert [r["letter_with_text_rate"] for r in rows] == [1.0, 0.0, 0.0, 1.0]


def test_fewshot_target_is_the_json_the_prompt_asks_for() -> None:
    assert knowledge.fewshot_target_gen(doc(0, "d0", gold=1)) == '{"answer": "B"}'
