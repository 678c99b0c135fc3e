"""A submission holds only regular files inside it, each under the size limit; anything else is refused by
name before a byte of the folder is read (a fifo would block the reader, a symlink leave the folder)."""

from __future__ import annotations

import os
from pathlib import Path

from culturesafe_ext.leaderboard.files import check_files
from culturesafe_ext.leaderboard.verdict import validate


def _folder(tmp_path: Path) -> Path:
    run = tmp_path / "run" / "model"
    run.mkdir(parents=True)
    (run / "results_2026-01-01T00-00-00.json").write_text("{}")
    return tmp_path / "run"


def test_regular_files_pass(tmp_path: Path) -> None:
    assert check_files(_folder(tmp_path)) == []


def test_a_symlink_out_of_the_folder_a_fifo_and_an_oversized_file_are_refused_by_name(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    (root / "model" / "samples_t_2026-01-01T00-00-00.jsonl").symlink_to(secret)
    (root / "linked_dir").symlink_to(tmp_path)
    os.mkfifo(root / "model" / "pipe.jsonl")
    (root / "big.json").write_bytes(b"x" * 2048)
    found = {Path(r.file).name: r.reason for r in check_files(root, max_bytes=1024)}
    assert found["samples_t_2026-01-01T00-00-00.jsonl"] == (
        f"a symbolic link to {str(secret)!r}: a submission holds only regular files"
    )
    assert found["linked_dir"].startswith("a symbolic link")
    assert found["pipe.jsonl"] == "a fifo: a submission holds only regular files"
    assert found["big.json"] == "2048 bytes, above the limit of 1024 bytes per file"
    # the validator refuses with them and reads nothing (a fifo would block it)
    refused = validate(root, ("adaculturesafe_safety_china",), allow_bundled=True, max_file_bytes=1024)
    assert {Path(r.file).name for r in refused} == set(found)


def test_the_submission_itself_as_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(_folder(tmp_path))
    [refusal] = check_files(tmp_path / "link")
    assert "the submission is a symbolic link" in refusal.reason
