"""The AdaCultureSafe builder on the real release, in process: rows, ids, configs and the dataset card."""

from __future__ import annotations

from pathlib import Path

import yaml


def test_rows_ids_and_configs(built_upstream: Path) -> None:
    import datasets

    rows = datasets.load_dataset(str(built_upstream), name="knowledge_china", split="test")
    assert len(rows) == 995
    first = rows[0]
    assert first["id"] == f"CHN/{first['source_key']}/k0" and first["iso_alpha2"] == "CN"
    assert first["options"][first["gold_index"]] and first["gold_letter"] == "ABCD"[first["gold_index"]]
    assert set(rows["source"]) == {"commisceo", "culturalatlas"}
    ids = datasets.load_dataset(str(built_upstream), name="knowledge", split="test")["id"]
    assert len(ids) == len(set(ids)) == 4385  # upstream keys repeat across countries; our ids do not
    safety = datasets.load_dataset(str(built_upstream), name="safety_india", split="test")[0]
    assert safety["query"] == f"{safety['scene']} {safety['requirement']}"
    assert "consular guide" in set(datasets.load_dataset(str(built_upstream), name="safety", split="test")["source"])


def test_card_front_matter(built_upstream: Path) -> None:
    text = (built_upstream / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---")[1])
    assert front["license"] == "unknown"
    names = {c["config_name"] for c in front["configs"]}
    assert {"knowledge", "safety", "knowledge_china", "safety_ukraine"} <= names
    info = {i["config_name"]: i for i in front["dataset_info"]}
    assert info["knowledge"]["splits"][0]["num_examples"] == 4385
    assert "arXiv:2603.08275" in text and "khk-abc/AdaCultureSafe@bc16669" in text
    assert "Always answering **B** scores 50.5%" in text
