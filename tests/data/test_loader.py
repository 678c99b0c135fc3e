"""The one loader: Hub id, local folder, bundled sample; and what it says when none can be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturesafe_ext.data import loader
from culturesafe_ext.data.adaculturesafe_schema import DEFAULT_HUB_ID


def test_local_folder_from_metadata(built_upstream: Path) -> None:
    data = loader.load_adaculturesafe("safety_spain", culturesafe_data=str(built_upstream), pretrained="ignored")
    assert len(data["test"]) == 1075 and set(data["test"]["country"]) == {"Spain"}


def test_env_var_chooses_the_source(built_upstream: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loader.DATA_ENV, str(built_upstream))
    assert loader.resolve_source() == str(built_upstream)
    assert len(loader.load_adaculturesafe("knowledge_ukraine")["test"]) == 1131
    assert loader.resolve_source("bundled") == "bundled"  # --metadata wins over the env var
    monkeypatch.delenv(loader.DATA_ENV)
    assert loader.resolve_source() == DEFAULT_HUB_ID


def test_missing_country_config_names_what_exists(built_upstream: Path) -> None:
    with pytest.raises(ValueError, match=r"has no config 'knowledge_thailand' \(it has: knowledge, knowledge_china"):
        loader.load_adaculturesafe("knowledge_thailand", culturesafe_data=str(built_upstream))


def test_not_a_folder_nor_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        loader.load_adaculturesafe("knowledge", culturesafe_data=str(tmp_path / "absent"))


def test_unreachable_hub_says_how_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loader.DATA_ENV, raising=False)
    with pytest.raises(RuntimeError) as err:
        loader.load_adaculturesafe("knowledge_china")
    text = str(err.value)
    assert DEFAULT_HUB_ID in text and "culturesafe build adaculturesafe --source" in text
    assert "culturesafe_data" in text and "CULTURESAFE_DATA" in text


def test_bundled_sample_is_built_by_the_release_builder() -> None:
    from culturesafe_ext.builders import bundled

    assert bundled.stale(loader.ADACULTURESAFE) == []  # the shipped folder is what the release builder writes now
    folder = loader.bundled_dataset_dir()
    assert folder == loader.ADACULTURESAFE.bundled and (folder / "README.md").exists()
    report = json.loads((folder / "build_report.json").read_text())
    assert report["problems"] == 0 and len(report["countries"]) >= 4
    letters = report["gold_letters"]["distribution"]
    assert max(letters.values()) - min(letters.values()) <= 1  # gold letters spread evenly
    for counts in report["countries"].values():
        assert counts["knowledge"]["written"] == 5 * counts["descriptions"]["written"]
        assert counts["safety"]["written"] == 5 * counts["descriptions"]["written"]
    rows = loader.load_adaculturesafe("knowledge", culturesafe_data="bundled")["test"]
    assert len(rows) == report["gold_letters"]["n"]


def test_a_stale_bundled_sample_is_caught(tmp_path: Path) -> None:
    """The shipped-vs-built comparison sees a changed row, a changed card and a missing file."""
    import shutil

    import pyarrow.parquet as pq
    from culturesafe_ext.builders import bundled

    shipped = tmp_path / "shipped"
    shutil.copytree(loader.ADACULTURESAFE.bundled, shipped)
    assert bundled.differences(shipped, loader.ADACULTURESAFE.bundled) == []
    table = pq.read_table(shipped / "knowledge_china" / "test.parquet")
    rows = table.to_pylist()
    rows[0]["question"] += "?"
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), shipped / "knowledge_china" / "test.parquet")
    card = shipped / "README.md"
    card.write_text(card.read_text(encoding="utf-8").replace("AdaCultureSafe", "AdaCultureSafe 2"), encoding="utf-8")
    (shipped / "safety_spain" / "test.parquet").unlink()
    assert bundled.differences(shipped, loader.ADACULTURESAFE.bundled) == [
        "safety_spain/test.parquet: missing from the shipped sample",
        "README.md: differs from a fresh build",
        "knowledge_china/test.parquet: differs from a fresh build",
    ]
