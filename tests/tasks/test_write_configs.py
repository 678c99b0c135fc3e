"""Issue 28: the task-YAML writer is `culturesafe tasks write-configs` (works from the installed wheel, creates
--out, writes a self-contained folder), and a group over a dataset lacking some of its countries ends in one
line naming them and that command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from culturesafe_ext.cli import main
from culturesafe_ext.tasks.yaml_configs import tasks_dir

RELEASE = "China,India,Spain,Thailand,Ukraine,Viet Nam"


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if p.suffix == ".yaml" or p.name.endswith("_yaml"))
    assert names == sorted(p.name for p in b.iterdir() if p.suffix == ".yaml" or p.name.endswith("_yaml"))
    for name in names:
        assert (a / name).read_text() == (b / name).read_text(), name


def test_write_configs_reproduces_the_installed_tasks_into_a_new_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "not" / "yet" / "there"
    assert main(["tasks", "write-configs", "adaculturesafe", "--countries", RELEASE, "--out", str(out)]) == 0
    same_files(out, tasks_dir("adaculturesafe"))  # the committed files are this command's output
    assert (out / "_knowledge_mc_template_yaml").is_file()  # the templates the YAMLs include travel along
    bundled = Path(__file__).resolve().parents[2] / "culturesafe_ext" / "data" / "bundled" / "culturax"
    cx = tmp_path / "cx"
    assert main(["tasks", "write-configs", "culturax", "--dataset", str(bundled), "--out", str(cx)]) == 0
    same_files(cx, tasks_dir("culturax"))
    assert f"use: lm_eval --include_path {cx}" in capsys.readouterr().out


def test_a_new_countrys_tasks(tmp_path: Path, capsys) -> None:
    out = tmp_path / "jp"
    assert main(["tasks", "write-configs", "adaculturesafe", "--countries", "Japan", "--out", str(out)]) == 0
    text = (out / "adaculturesafe_knowledge_gen_japan.yaml").read_text()
    assert "culturesafe_config: knowledge_japan" in text and "include: _knowledge_gen_template_yaml" in text
    assert "- adaculturesafe_safety_japan" in (out / "_adaculturesafe_safety.yaml").read_text()
    capsys.readouterr()


def china_only(tmp_path: Path) -> Path:
    """A built dataset holding only China: the bundled sample's China configs under a card that lists them."""
    src = Path(__file__).resolve().parents[2] / "culturesafe_ext" / "data" / "bundled" / "adaculturesafe"
    folder = tmp_path / "china_only"
    folder.mkdir()
    configs = ["knowledge", "knowledge_china", "safety", "safety_china"]
    for name in configs:
        shutil.copytree(src / name, folder / name)
    card = "---\nconfigs:\n" + "".join(
        f"- config_name: {c}\n  data_files:\n  - split: test\n    path: {c}/*\n" for c in configs
    )
    (folder / "README.md").write_text(card + "---\n", encoding="utf-8")
    return folder


def test_a_dataset_without_some_countries_fails_in_one_line_naming_them(tmp_path: Path) -> None:
    from culturesafe_ext.data.loader import MissingUnitsError, load_adaculturesafe

    folder = china_only(tmp_path)
    with pytest.raises(MissingUnitsError) as err:
        load_adaculturesafe(culturesafe_config="knowledge_india", culturesafe_data=str(folder))
    text = str(err.value)
    assert "\n" not in text and err.value.code == text  # SystemExit: printed as is, exit status 1
    assert "lacks the countries India, Spain, Thailand, Ukraine, Viet Nam" in text and "it has: China" in text
    assert f"culturesafe tasks write-configs adaculturesafe --dataset {folder} --out" in text
