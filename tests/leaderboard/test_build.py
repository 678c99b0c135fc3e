"""``leaderboard build``'s rows: labelled per run folder, so two runs of one model can be told apart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support.lm_eval_files import knowledge_rows, safety_rows, write_run

from culturesafe_ext.cli import main


def _two_runs_of_one_model(tmp_path: Path) -> list[Path]:
    runs = []
    for name, correct, score in (("first", [1, 1, 0, 0], 9.0), ("rerun", [1, 0, 0, 0], 4.0)):
        tasks = {
            "adaculturesafe_knowledge_gen_china": knowledge_rows("China", "d1", correct),
            "adaculturesafe_safety_china": safety_rows("China", "d1", [score]),
        }
        runs.append(write_run(tmp_path / name, tasks, model="same-model"))
    return runs


def test_labels_name_the_rows_and_each_row_keeps_its_run_folder(tmp_path: Path) -> None:
    runs = _two_runs_of_one_model(tmp_path)
    out = tmp_path / "board"
    argv = ["leaderboard", "build", *map(str, runs), "--out", str(out), "--label", "base", "--label", "rerun"]
    assert main(argv) == 0
    rows = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())["rows"]}
    assert set(rows) == {"base", "rerun"}
    assert rows["base"]["run_dir"] == str(runs[0]) and rows["rerun"]["run_dir"] == str(runs[1])
    assert rows["base"]["cells"]["pooled"]["acc"]["value"] == pytest.approx(0.5)
    assert rows["rerun"]["cells"]["pooled"]["acc"]["value"] == pytest.approx(0.25)
    with (out / "leaderboard.csv").open(newline="") as f:
        table = {r["model"]: r["run_dir"] for r in csv.DictReader(f)}
    assert table == {"base": str(runs[0]), "rerun": str(runs[1])}


def test_without_labels_a_repeated_model_is_numbered(tmp_path: Path) -> None:
    runs = _two_runs_of_one_model(tmp_path)
    out = tmp_path / "board"
    assert main(["leaderboard", "build", *map(str, runs), "--out", str(out)]) == 0
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    assert {(r["model"], r["run_dir"]) for r in rows} == {("same-model", str(runs[0])), ("same-model #2", str(runs[1]))}


def test_one_label_per_run_folder(tmp_path: Path, capsys) -> None:
    runs = _two_runs_of_one_model(tmp_path)
    assert main(["leaderboard", "build", *map(str, runs), "--out", str(tmp_path / "b"), "--label", "only"]) == 1
    assert "--label was given 1 time(s) for 2 RUN_DIR(s)" in capsys.readouterr().err
