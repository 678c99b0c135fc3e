"""Dirty inputs through ``python -m culturesafe_ext.cli build``: absurd file names, deep nesting and duplicate
keys end in one line, without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders.test_inputs_strict import CHINA, record
from culturesafe_ext.builders import adaculturesafe

SPAIN = "('西班牙', 'Spain', 'ES', 'ESP', '724', '是').json"


ABSURD_NAMES = ["{[]: 1}.json", "{{}: 2}.json", "(" * 200 + ".json", "[1, 2].json", "('a', 'b').json", "1e99999.json"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "culturesafe_ext.cli", *args], capture_output=True, text=True)


def build_cli(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("build", "adaculturesafe", "--source", str(src), "--out", str(out), *extra)


def test_absurd_file_names_are_file_errors_without_traceback(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ABSURD_NAMES:
        (src / name).write_text("{}", encoding="utf-8")
    (src / CHINA).write_text(json.dumps({"k-item_1-0": record()}), encoding="utf-8")
    done = build_cli(src, tmp_path / "out")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    for name in ABSURD_NAMES:
        assert f"{name}: record '-': field 'file name': file name " in done.stderr
    done = build_cli(src, tmp_path / "out", "--skip-invalid")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    for name in ABSURD_NAMES:
        assert f"unreadable file (all its records rejected): {name}" in done.stdout


def _release_error(src: Path, out: Path) -> str:
    with pytest.raises(adaculturesafe.ReleaseError) as err:
        adaculturesafe.build(src, out)
    return str(err.value)


@pytest.mark.parametrize("depth", [201, 5_000, 200_000])
def test_deep_nesting_is_a_file_error(depth: int, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / SPAIN).write_text('{"k-item_1-0": ' + "[" * depth + "]" * depth + "}", encoding="utf-8")
    (src / CHINA).write_text(json.dumps({"k-item_1-0": record()}), encoding="utf-8")
    assert f"{SPAIN}: record '-': field 'json': nested deeper than 200 levels" in _release_error(src, tmp_path / "o")
    release = adaculturesafe.build(src, tmp_path / "out", skip_invalid=True)
    assert release.unreadable_files == [SPAIN] and release.report["China"].knowledge.written == 2
    if depth == 200_000:  # and through the CLI, with --skip-invalid: no traceback
        done = build_cli(src, tmp_path / "cli", "--skip-invalid")
        assert done.returncode == 0 and "Traceback" not in done.stderr and f"rejected): {SPAIN}" in done.stdout


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # two descriptions under one key: silently merged before
        ('{"k-item_1-0": REC, "k-item_2-0": REC, "k-item_1-0": REC}', "k-item_1-0"),
        ('{"k-item_1-0": {"Cultural Description": "a", "Cultural Description": "b"}}', "Cultural Description"),
        ('{"k-item_1-0": {"Cultural Knowledge": [{"options": {"A": "x", "A": "y"}}]}}', "A"),
    ],
)
def test_duplicate_keys_anywhere_name_file_and_key(text: str, key: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / CHINA).write_text(text.replace("REC", json.dumps(record())), encoding="utf-8")
    assert f"{CHINA}: record '-': field '{key}': duplicate key '{key}'" in _release_error(src, tmp_path / "out")
