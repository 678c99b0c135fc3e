"""``leaderboard export``: a hand-made run becomes the Hub's Eval Results files, read back with huggingface_hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import parse_eval_result_entries
from support.lm_eval_files import DATE_ID, knowledge_rows, safety_rows, write_run

from culturesafe_ext.cli import main
from culturesafe_ext.leaderboard.export import export

SAFETY, KNOWLEDGE, GROUP = "adaculturesafe_safety_aland", "adaculturesafe_knowledge_aland", "adaculturesafe_safety"
REVISION = "5503434ddd753f426f4b38109466949a1217c2bb"


def handmade(tmp_path: Path, source: str | None = "culturesafe/adaculturesafe", limit=None) -> Path:
    """A run with a safety task (2 of 20 judgements failed), its group and a knowledge task, with metrics."""
    scores = [7.0, 8.0, None, 6.0, 9.0, 5.0, 7.0, 8.0, 6.0, 7.0]
    tasks = {SAFETY: safety_rows("Aland", "d1", scores), KNOWLEDGE: knowledge_rows("Aland", "d1", [1, 0, 1, 1])}
    root = write_run(tmp_path / "run", tasks, limit=limit)
    path = root / "handmade" / f"results_{DATE_ID}.json"
    data = json.loads(path.read_text())
    data["results"][SAFETY].update(
        {"respectfulness,judge": 7.0, "awareness,judge": 5.0, "judge_failures,judge": 2, "n_judged,judge": 18}
    )
    data["results"][KNOWLEDGE].update({"acc,none": 0.75, "acc_by_description,none": 0.7})
    data["results"][GROUP] = {"alias": GROUP, "respectfulness,judge": 7.0, "respectfulness_stderr,judge": "N/A"}
    data["group_subtasks"][GROUP] = [SAFETY]
    metadata = {"culturesafe_data": source, "culturesafe_revision": REVISION} if source else {}
    for task in (SAFETY, KNOWLEDGE):
        data["configs"][task]["metadata"] = metadata
    path.write_text(json.dumps(data))
    return root / "handmade"


def test_every_task_and_group_with_its_headline_dataset_and_judge(tmp_path: Path) -> None:
    written = export(handmade(tmp_path), tmp_path / "pr")
    path = tmp_path / "pr" / ".eval_results" / "adaculturesafe.yaml"
    assert written == {path: 3} and sorted(p.name for p in (tmp_path / "pr" / ".eval_results").iterdir()) == [
        "adaculturesafe.yaml"
    ]
    entries = {e.task_id: e for e in parse_eval_result_entries(yaml.safe_load(path.read_text()))}
    assert sorted(entries) == [KNOWLEDGE, GROUP, SAFETY]
    assert {e.dataset_id for e in entries.values()} == {"culturesafe/adaculturesafe"}
    assert {e.dataset_revision for e in entries.values()} == {REVISION}
    assert entries[KNOWLEDGE].value == 0.7  # accuracy averaged per description, not the plain acc
    assert entries[SAFETY].value == entries[GROUP].value == 7.0
    assert entries[SAFETY].date == "2026-01-01T00:00:00"
    # the format has no judge field: identity and failures are in the notes, for the group as for its task
    for task in (SAFETY, GROUP):
        assert "metric respectfulness,judge" in entries[task].notes
        assert "judge openai:judge-x (rubric v1)" in entries[task].notes
        assert "judge failures 2 of 20 judgements" in entries[task].notes
    assert "judge" not in entries[KNOWLEDGE].notes.replace("metric", "")


def test_source_link_and_default_hub_id(tmp_path: Path) -> None:
    export(handmade(tmp_path, source=None), tmp_path / "pr", source_url="https://example.org/logs", source_name="Logs")
    raw = yaml.safe_load((tmp_path / "pr" / ".eval_results" / "adaculturesafe.yaml").read_text())
    assert raw[0]["source"] == {"url": "https://example.org/logs", "name": "Logs"}
    assert raw[0]["dataset"] == {"id": "culturesafe/adaculturesafe", "task_id": KNOWLEDGE}  # no revision logged


@pytest.mark.parametrize(
    ("source", "limit", "expected"),
    [
        ("bundled", None, "metadata culturesafe_data='bundled' is not a Hub dataset"),
        ("culturesafe/adaculturesafe", 5, "run with --limit 5"),
    ],
)
def test_refused_in_one_line(tmp_path: Path, capsys, source: str, limit, expected: str) -> None:
    run = handmade(tmp_path, source=source, limit=limit)
    assert main(["leaderboard", "export", str(run), "--out", str(tmp_path / "pr")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "culturesafe leaderboard export: error:" in err and expected in err, err
    assert not (tmp_path / "pr" / ".eval_results").exists()


def test_command_lists_what_it_wrote(tmp_path: Path, capsys) -> None:
    assert main(["leaderboard", "export", str(handmade(tmp_path)), "--out", str(tmp_path / "pr")]) == 0
    assert f"{tmp_path / 'pr' / '.eval_results' / 'adaculturesafe.yaml'}: 3 entries" in capsys.readouterr().out
