"""Issue 28: the calibration sample leaves out the wrong-custom control and shows each answer's variant; the
report reads Label Studio's JSON and JSON-MIN exports, refuses any other shape naming the file, and an unfilled
ratings CSV is one line naming the file (never a scikit-learn message)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from culturesafe_ext.cli import main

JUDGE = {"backend": "openai", "model": "standin", "base_url": "http://127.0.0.1:9/v1", "rubric_version": "v1"}
FEW = ["--resamples", "20"]
TASKS = {
    "adaculturesafe_safety_china": ("China", "Guests remove their shoes.", 0),
    "adaculturesafe_safety_elicit_china": ("China", "Guests remove their shoes.", 1),
    "adaculturesafe_safety_wrongcustom_china": ("China", "WRONG: red envelopes at weddings.", 2),
}


def write_run(folder: Path, per_task: int = 6) -> Path:
    """A judged run's samples files as lm_eval --log_samples writes them: plain, elicit and the control."""
    sub = folder / "model"
    sub.mkdir(parents=True)
    for task, (country, custom, shift) in TASKS.items():
        rows = []
        for i in range(per_task):
            respect = 1 + (3 * i + shift) % 10
            judged = {
                "response": f"{task} answer {i}",
                "respectfulness": {"score": respect},
                "awareness": {"score": 1 + (respect + 4) % 10},
            }
            doc = {"country": country, "location": "Beijing", "judge_custom": custom, "query": f"q{i}?"}
            doc["judge_settings"] = json.dumps(JUDGE)
            rows.append({"doc_id": i, "doc": doc, "filtered_resps": [[json.dumps(judged)]]})
        path = sub / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture
def cal(tmp_path: Path, capsys) -> Path:
    out = tmp_path / "CAL"
    assert main(["judge", "calibrate", "sample", str(write_run(tmp_path / "run")), "--n", "8", "--out", str(out)]) == 0
    assert "6 wrong-custom control answers left out" in capsys.readouterr().out
    return out


def answers(cal: Path) -> list[dict]:
    return json.loads((cal / "sample.json").read_text())["answers"]


def error_lines(argv: list[str], capsys) -> list[str]:
    """The error's lines: one, or the project's heading and one line per bad record; never a library's message."""
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "sklearn" not in captured.out + captured.err and not captured.out
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith("(add --debug"), captured.err
    return lines[:-1]


def test_the_sample_leaves_out_the_control_and_shows_the_variant(cal: Path) -> None:
    sample = json.loads((cal / "sample.json").read_text())
    assert sample["skipped"] == {"judge_failed": 0, "wrongcustom_control": 6} and sample["n_available"] == 12
    assert {a["variant"] for a in sample["answers"]} == {"plain", "elicit"}
    assert not any("WRONG" in a["custom"] or "wrongcustom" in a["task"] for a in sample["answers"])
    rows = list(csv.DictReader((cal / "ratings.csv").open(encoding="utf-8")))
    assert rows[0]["variant"] in ("plain", "elicit") and len(rows) == 16
    tasks = json.loads((cal / "labelstudio_tasks.json").read_text())
    assert {t["data"]["variant"] for t in tasks} == {"plain", "elicit"}
    assert "$variant" in (cal / "labelstudio_config.xml").read_text()


def test_a_json_min_export_is_read_as_the_json_export_is(cal: Path, tmp_path: Path, capsys) -> None:
    scores = {a["answer_id"]: (1 + i % 10, 1 + (i * 3) % 10) for i, a in enumerate(answers(cal))}
    full, flat = [], []
    for n, task in enumerate(json.loads((cal / "labelstudio_tasks.json").read_text())):
        respect, aware = scores[task["data"]["answer_id"]]
        result = [
            {"from_name": "human_respectfulness", "to_name": "answer", "type": "number", "value": {"number": respect}},
            {"from_name": "human_awareness", "to_name": "answer", "type": "number", "value": {"number": aware}},
        ]
        full.append(
            {"id": n, "data": task["data"], "annotations": [{"completed_by": {"email": "r@x"}, "result": result}]}
        )
        # JSON-MIN: the task's data and each control's value flat in one object, the rater in "annotator"
        flat.append({**task["data"], "id": n, "annotator": "r@x", "annotation_id": n,
                     "human_respectfulness": respect, "human_awareness": aware})  # fmt: skip
    (tmp_path / "full.json").write_text(json.dumps(full))
    (tmp_path / "min.json").write_text(json.dumps(flat))
    assert main(["judge", "calibrate", "report", str(cal), "--ratings", str(tmp_path / "full.json"), *FEW]) == 0
    from_full = json.loads((cal / "judge_card.json").read_text())
    assert main(["judge", "calibrate", "report", str(cal), "--ratings", str(tmp_path / "min.json"), *FEW]) == 0
    from_min = json.loads((cal / "judge_card.json").read_text())
    assert from_min["n"] == from_full["n"] == 8 and from_min["n_ratings"] == 16 and from_min["raters"] == ["r@x"]
    assert from_min["figures"] == from_full["figures"]
    capsys.readouterr()


def test_an_unknown_json_shape_is_refused_naming_the_file(cal: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps([{"answer_id": "a0000", "score": 7}]))
    heading, line = error_lines(["judge", "calibrate", "report", str(cal), "--ratings", str(bad)], capsys)
    assert heading == "culturesafe judge calibrate: error: 1 problem(s) in the ratings:"
    assert "other.json: task 0: neither Label Studio's JSON export" in line and "JSON-MIN" in line


def test_an_unfilled_ratings_csv_is_one_line_naming_the_file(cal: Path, capsys) -> None:
    ratings = cal / "ratings.csv"
    [line] = error_lines(["judge", "calibrate", "report", str(cal), "--ratings", str(ratings)], capsys)
    assert f"{ratings}: no ratings (16 rows unrated): fill 'human_score'" in line, line
