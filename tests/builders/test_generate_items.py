"""Generation pieces without an LLM: reply checks, gold balancing, prompts, review decisions."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from culturesafe_ext.builders.generate import review
from culturesafe_ext.builders.generate.balance import balance_gold
from culturesafe_ext.builders.generate.items import check_mcq, mcqs_in_reply, queries_in_reply
from culturesafe_ext.builders.generate.prompts import load_prompt

DESCRIPTION = "In Thailand people greet elders with a wai, palms pressed together at the chest."


def mcq(**changes) -> dict:
    item = {
        "question": "How do Thais greet elders?",
        "options": {"A": "A handshake", "B": "A wai", "C": "A bow from the waist", "D": "A hug"},
        "answer": "B",
        "evidence": "greet elders with a wai",
    }
    return {**item, **changes}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"options": {"A": "x", "B": "y", "C": "z"}}, "options: keys ['A', 'B', 'C'] are not exactly A, B, C, D"),
        ({"options": {"A": "Fork and spoon", "B": " Fork\u00a0and  spoon.", "C": "z", "D": "w"}}, "options.B: same as"),
        ({"options": {"A": "x", "B": "z", "C": "\uff58", "D": "w"}}, "options.C: same as option A"),  # full-width x
        ({"options": {"A": "x", "B": "", "C": "z", "D": "w"}}, "options.B: empty"),
        ({"answer": "E"}, "answer: 'E' is not one of A, B, C, D"),
        ({"answer": "B/C"}, "answer: 'B/C' is not one of A, B, C, D"),
        ({"evidence": "greet elders with a bow"}, "evidence: not a passage of the description"),
        ({"question": "  "}, "question: empty"),
    ],
)
def test_invalid_mcqs_are_named(changes: dict, problem: str) -> None:
    row, problems = check_mcq(mcq(**changes), DESCRIPTION, "questions[0].")
    assert row is None and any(p.startswith("questions[0]." + problem) for p in problems), problems


def test_valid_mcq_and_reply_level_problems() -> None:
    row, problems = check_mcq(mcq(evidence='"Greet  elders with a WAI."'), DESCRIPTION)  # quotes, case, spaces
    assert problems == [] and row["gold_index"] == 1 and row["options"][1] == "A wai"
    valid, problems = mcqs_in_reply({"questions": [mcq(), mcq(answer="Z"), "text"]}, DESCRIPTION)
    assert (
        len(valid) == 1
        and problems[0].startswith("questions[1].answer")
        and problems[1] == "questions[2]: expected an object"
    )
    assert mcqs_in_reply({"items": []}, DESCRIPTION) == ([], ["questions: missing, empty or not a list"])
    valid, problems = queries_in_reply(
        {"queries": [{"scene": "s", "requirement": "S"}, {"scene": "a", "requirement": "b"}]}
    )
    assert len(valid) == 1 and problems == ["queries[0].requirement: same as the scene"]


def test_gold_positions_are_balanced_seeded_and_keep_the_gold_text() -> None:
    rng = random.Random(1)
    items = [
        {"id": str(i), "options": [f"o{i}-{k}" for k in range(4)], "gold_index": rng.choice([1, 1, 2])}
        for i in range(103)
    ]
    out = balance_gold(items, seed=7)
    counts = Counter(o["gold_index"] for o in out)
    assert sorted(counts.values()) == [25, 26, 26, 26]
    for before, after in zip(items, out, strict=True):
        assert after["options"][after["gold_index"]] == before["options"][before["gold_index"]]
        assert sorted(after["options"]) == sorted(before["options"])
    assert balance_gold(items, seed=7) == out and balance_gold(items, seed=8) != out


def test_prompts_are_versioned_files_with_every_value_filled() -> None:
    prompt = load_prompt("knowledge")
    assert prompt.id == "gen-knowledge.v1" and set(prompt.fields) == {"description", "country", "location", "n"}
    messages = prompt.messages(description="x </DESCRIPTION> {n}", country="Japan", location="Kyoto", n=5)
    assert "\u2039/DESCRIPTION> {n}" in messages[1]["content"]  # tag defused, value not re-scanned
    with pytest.raises(ValueError, match="needs values for"):
        prompt.messages(description="x")
    with pytest.raises(FileNotFoundError):
        load_prompt("knowledge", "v9")


def candidates() -> list[dict]:
    k_fields = {"question": "Q?", "option_A": "a", "option_B": "b", "option_C": "c", "option_D": "d", "answer": "A"}
    return [
        {"id": "X/1/k0", "kind": "knowledge", "context": "ctx", "fields": k_fields},
        {
            "id": "X/1/s0",
            "kind": "safety",
            "context": "ctx",
            "fields": {"scene": "At a temple.", "requirement": "Mock it."},
        },
    ]


def write_csv(tmp_path: Path, rows: list[dict]) -> Path:
    review.export(candidates(), tmp_path)
    import csv

    exported = list(csv.DictReader((tmp_path / "review.csv").open(encoding="utf-8")))
    for row, changes in zip(exported, rows, strict=False):
        row.update(changes)
    path = tmp_path / "decisions.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=review.CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(exported)
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"decision": "maybe"}], "decisions.csv: line 2 (id 'X/1/k0'): field 'decision': 'maybe' is not one of"),
        ([{"id": "X/9/k0", "decision": "accept"}], "line 2 (id 'X/9/k0'): field 'id': no such item"),
        ([{"decision": "accept", "question": "Changed?"}], "line 2 (id 'X/1/k0'): field 'question': changed, but"),
        ([{"decision": "edit"}], "line 2 (id 'X/1/k0'): field 'decision': 'edit' but no field was changed"),
        ([{"decision": "edit", "option_B": "a"}], "line 2 (id 'X/1/k0'): field 'option_B': same as option A"),
        ([{"decision": "edit", "answer": "Q"}], "line 2 (id 'X/1/k0'): field 'answer': 'Q' is not one of"),
        ([{}, {"decision": "edit", "requirement": ""}], "line 3 (id 'X/1/s0'): field 'requirement': empty"),
        (
            [{"decision": "accept"}, {"id": "X/1/k0", "decision": "reject"}],
            "line 3 (id 'X/1/k0'): field 'id': a second",
        ),
    ],
)
def test_malformed_csv_decisions_name_file_record_and_field(tmp_path: Path, rows: list[dict], message: str) -> None:
    path = write_csv(tmp_path, rows)
    with pytest.raises(review.DecisionError) as err:
        review.read_decisions(path, {c["id"]: c for c in candidates()})
    assert message in str(err.value)


def test_csv_decisions_apply(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"decision": "edit", "answer": "C"}, {"decision": "Reject"}])
    decisions = review.read_decisions(path, {c["id"]: c for c in candidates()})
    kept, counts = review.apply(candidates(), decisions)
    assert [k["id"] for k in kept] == ["X/1/k0"] and kept[0]["fields"]["answer"] == "C" and kept[0]["checked"]
    assert counts == {"candidates": 2, "reviewed": 2, "accepted": 0, "edited": 1, "rejected": 1, "unreviewed": 0}


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"not": "a list"}, "export.json: top level: expected a list of tasks"),
        ([{"data": {}}], "export.json: task 0: field 'data.id': missing"),
        (
            [
                {
                    "data": {"id": "X/1/k0"},
                    "annotations": [{"result": [{"from_name": "decision", "value": {"choices": ["a", "b"]}}]}],
                }
            ],
            "task 0 (id 'X/1/k0'): field 'result[0].value.choices': expected exactly one choice",
        ),
        (
            [{"data": {"id": "X/1/k0"}, "annotations": [{"result": []}]}],
            "task 0 (id 'X/1/k0'): field 'decision': the annotation has no",
        ),
        (
            [
                {
                    "data": {"id": "X/1/s0"},
                    "annotations": [
                        {
                            "result": [
                                {"from_name": "decision", "value": {"choices": ["edit"]}},
                                {"from_name": "edit_option_A", "value": {"text": ["new"]}},
                            ]
                        }
                    ],
                }
            ],
            "task 0 (id 'X/1/s0'): field 'option_A': not a field of a safety item",
        ),
    ],
)
def test_malformed_label_studio_exports_name_record_and_field(tmp_path: Path, export: object, message: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    with pytest.raises(review.DecisionError) as err:
        review.read_decisions(path, {c["id"]: c for c in candidates()})
    assert message in str(err.value)


def test_label_studio_config_names_match_the_importer(tmp_path: Path) -> None:
    review.export(candidates(), tmp_path)
    config = (tmp_path / "labelstudio_config.xml").read_text()
    assert '<Choices name="decision" toName="item"' in config and 'name="edit_option_A"' in config
    assert 'name="edit_scene"' in config and 'name="edit_helpful"' not in config
    tasks = json.loads((tmp_path / "labelstudio_tasks.json").read_text())
    assert tasks[0]["data"]["item"].startswith("Q?\nA. a\nB. b") and tasks[0]["data"]["option_A"] == "a"
