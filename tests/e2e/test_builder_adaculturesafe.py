"""The AdaCultureSafe builder: real release counts, every kind of bad input, the Hub layout, push."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from culturesafe_ext.builders import adaculturesafe
from culturesafe_ext.builders.hub_layout import push_to_hub

CHINA = "('中国', 'China', 'CN', 'CHN', '156', '是').json"
IVORY = "('科特迪瓦', \"Côte d'Ivoire\", 'CI', 'CIV', '384', '是').json"


def mcq(label: str = "B", **overrides) -> dict:
    item = {
        "question": "Which gift is polite?",
        "options": {"A": "Clocks", "B": "Fruit", "C": "Knives", "D": "Shoes"},
        "label": label,
        "checked": "true",
    }
    return {**item, **overrides}


def safety(**overrides) -> dict:
    return {"scene": "I visit a family.", "requirement": "Mock their custom.", "checked": "true", **overrides}


def record(**overrides) -> dict:
    rec = {
        "Cultural Description": "Gifts are given with both hands.",
        "Location": "China",
        "Cultural Knowledge": [mcq(), mcq("A")],
        "Cultural Safety": [safety(), safety()],
    }
    return {**rec, **overrides}


def write(folder: Path, name: str, data: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def build(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``culturesafe build adaculturesafe --source SRC --out OUT EXTRA...`` in a subprocess."""
    command = [sys.executable, "-m", "culturesafe_ext.cli", "build", "adaculturesafe", "--source", str(src)]
    return subprocess.run([*command, "--out", str(out), *extra], capture_output=True, text=True)


def test_real_release_counts(upstream_adaculturesafe: Path, tmp_path: Path) -> None:
    done = build(upstream_adaculturesafe, tmp_path / "d")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "d" / "build_report.json").read_text())
    totals = {
        kind: sum(c[kind]["written"] for c in report["countries"].values())
        for kind in ("descriptions", "knowledge", "safety")
    }
    assert totals == {"descriptions": 885, "knowledge": 4385, "safety": 4424}
    for counts in report["countries"].values():
        for kind in ("descriptions", "knowledge", "safety"):
            assert counts[kind]["read"] == counts[kind]["written"] + counts[kind]["rejected"]
    assert sorted(report["countries"]) == ["China", "India", "Spain", "Ukraine"]
    # the skew the circular tasks answer: B is gold for about half of the questions
    assert report["gold_letters"]["most_frequent_letter"] == "B"
    assert 0.50 < report["gold_letters"]["most_frequent_letter_baseline"] < 0.51
    # split options are merged back, each repair listed
    assert len(report["repairs"]) == 10 and all("merged split options" in r for r in report["repairs"])
    assert "China" in done.stdout and "4385" not in done.stdout  # per-country lines, not one total


def test_non_ascii_names_with_spaces(tmp_path: Path) -> None:
    write(tmp_path / "src", IVORY, {"culturalatlas-item_1-0": record(Location="Côte d'Ivoire")})
    release = adaculturesafe.build(tmp_path / "src", tmp_path / "out")
    assert release.countries == ["Côte d'Ivoire"]
    assert (tmp_path / "out" / "knowledge_cote_d_ivoire" / "test.parquet").exists()
    assert release.knowledge[0]["id"] == "CIV/culturalatlas-item_1-0/k0"


BAD_CASES = {
    "missing description": (
        {"k-item_1-0": {k: v for k, v in record().items() if k != "Cultural Description"}},
        "Cultural Description",
        "missing",
    ),
    "empty location": ({"k-item_1-0": record(Location="  ")}, "Location", "empty"),
    "gold not an option": (
        {"k-item_1-0": record(**{"Cultural Knowledge": [mcq(label="E")]})},
        "Cultural Knowledge[0].label",
        "not one of",
    ),
    "duplicate options": (
        {
            "k-item_1-0": record(
                **{"Cultural Knowledge": [mcq(options={"A": "Fruit", "B": "Fruit", "C": "Tea", "D": "Cake"})]}
            )
        },
        "Cultural Knowledge[0].options",
        "duplicate",
    ),
    "not checked": (
        {"k-item_1-0": record(**{"Cultural Safety": [safety(checked="false")]})},
        "Cultural Safety[0].checked",
        "not verified",
    ),
    "empty requirement": (
        {"k-item_1-0": record(**{"Cultural Safety": [safety(requirement="")]})},
        "Cultural Safety[0].requirement",
        "empty",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_records_name_file_record_field(case: str, tmp_path: Path) -> None:
    data, field, message = BAD_CASES[case]
    write(tmp_path / "src", CHINA, data)
    done = build(tmp_path / "src", tmp_path / "out")
    assert done.returncode == 1
    assert f"{CHINA}: record 'k-item_1-0': field '{field}'" in done.stderr and message in done.stderr


def test_invalid_json_and_encoding_name_the_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / CHINA).write_text('{"k-item_1-0": {', encoding="utf-8")
    (src / "('西班牙', 'Spain', 'ES', 'ESP', '724', '是').json").write_bytes(
        json.dumps({"k-item_1-0": record(Location="Espa\u00f1a")}, ensure_ascii=False).encode("cp1252")
    )
    (src / "not a tuple.json").write_text("{}", encoding="utf-8")
    done = build(src, tmp_path / "out")
    assert done.returncode == 1
    assert f"{CHINA}: record '-': field 'json': invalid JSON at line 1" in done.stderr
    assert "'Spain', 'ES', 'ESP', '724', '是').json: record '-': field 'encoding': not UTF-8" in done.stderr
    assert "not a tuple.json: record '-': field 'file name'" in done.stderr


def test_skip_invalid_writes_rejects_and_balances_counts(tmp_path: Path) -> None:
    data = {
        "k-item_1-0": record(**{"Cultural Knowledge": [mcq(), mcq(label="Z"), mcq("C")]}),
        "k-item_2-0": record(Location=""),
        "k-item_3-0": record(),
    }
    write(tmp_path / "src", CHINA, data)
    done = build(tmp_path / "src", tmp_path / "out", "--skip-invalid")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())["countries"]["China"]
    assert report["descriptions"] == {"read": 3, "written": 2, "rejected": 1}
    assert report["knowledge"] == {
        "read": 7,
        "written": 4,
        "rejected": 3,
    }  # 1 bad label + 2 under the bad record
    assert report["safety"] == {"read": 6, "written": 4, "rejected": 2}
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert {(r["record"], r["field"]) for r in rejects} == {
        ("k-item_1-0", "Cultural Knowledge[1].label"),
        ("k-item_2-0", "Location"),
    }
    assert "China                    knowledge         7 =       4 +        3" in done.stdout


def test_push_dry_run_lists_the_folder(tmp_path: Path) -> None:
    write(tmp_path / "src", CHINA, {"k-item_1-0": record()})
    done = build(tmp_path / "src", tmp_path / "out", "--push", "someone/adaculturesafe", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would upload 6 files to https://huggingface.co/datasets/someone/adaculturesafe" in done.stdout
    assert push_to_hub(tmp_path / "out", "x/y", dry_run=True) == [
        "README.md",
        "build_report.json",
        "knowledge/test.parquet",
        "knowledge_china/test.parquet",
        "safety/test.parquet",
        "safety_china/test.parquet",
    ]
