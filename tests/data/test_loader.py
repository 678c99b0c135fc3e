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


def test_missing_country_config_names_what_exists_and_the_fix(built_upstream: Path) -> None:
    with pytest.raises(loader.MissingUnitsError) as err:
        loader.load_adaculturesafe("knowledge_thailand", culturesafe_data=str(built_upstream))
    text = str(err.value)
    assert "lacks the countries Thailand, Viet Nam" in text and "it has: China, India, Spain, Ukraine" in text
    assert f"culturesafe tasks write-configs adaculturesafe --dataset {built_upstream}" in text


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


def _write(folder: Path, tag: str) -> Path:
    """A dataset folder in the builders' Hub layout whose rows differ by ``tag`` but not in size."""
    from culturesafe_ext.builders.hub_layout import CardText, ConfigTable, write_hub_dataset
    from datasets import Features, Value

    from culturesafe_ext.data.culturax_schema import DOMAINS

    features = Features({"id": Value("string"), "question": Value("string"), "domain": Value("string")})
    rows = [{"id": f"{tag}-{i}", "question": f"What does {tag} do?", "domain": DOMAINS[0]} for i in range(3)]
    write_hub_dataset(folder, [ConfigTable("all", "test", features, rows)], CardText("Same name", "same card"))
    return folder


def test_a_folder_of_the_same_name_or_rewritten_is_read_as_it_is_now(tmp_path: Path, monkeypatch) -> None:
    """Two runs' outputs named alike (same card, same sizes) used to share one ``datasets`` cache entry."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    first, second = _write(tmp_path / "run1" / "bench", "aaaa"), _write(tmp_path / "run2" / "bench", "bbbb")
    assert loader.load_culturax("all", culturax_data=str(first))["test"]["id"] == ["aaaa-0", "aaaa-1", "aaaa-2"]
    assert loader.load_culturax("all", culturax_data=str(second))["test"]["id"] == ["bbbb-0", "bbbb-1", "bbbb-2"]
    _write(first, "cccc")  # the same folder rebuilt (a re-import after review, say)
    assert loader.load_culturax("all", culturax_data=str(first))["test"]["id"] == ["cccc-0", "cccc-1", "cccc-2"]
    again = loader.load_culturax("all", culturax_data=str(first))["test"]  # unchanged: its own cache entry reused
    assert again.cache_files == loader.load_culturax("all", culturax_data=str(first))["test"].cache_files
    # the task-config writer reads folders through the same function
    from culturesafe_ext.data.culturax_schema import DOMAINS
    from culturesafe_ext.tasks.yaml_configs import domains_from_dataset

    assert loader.load_folder(second, "all")["test"]["question"][0] == "What does bbbb do?"
    assert domains_from_dataset(second) == [DOMAINS[0]]
