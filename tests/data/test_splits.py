"""Split by description, and the guard that keeps trained-on descriptions out of evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturesafe_ext.data import loader, splits


def bundled_rows() -> list[dict]:
    return list(loader.load_adaculturesafe("knowledge", culturesafe_data="bundled")["test"])


def test_split_is_by_description_stratified_and_seeded() -> None:
    rows = bundled_rows()
    split = splits.split_descriptions(rows, heldout_fraction=0.5, seed=3)
    assert not set(split.train) & set(split.heldout)
    assert set(split.train) | set(split.heldout) == {r["description_id"] for r in rows}
    for country in {r["country"] for r in rows}:  # every country on both sides
        assert split.by_country[country] == {"train": 1, "heldout": 1}
    assert splits.split_descriptions(rows, 0.5, seed=3) == split
    others = [splits.split_descriptions(rows, 0.5, seed=s).heldout for s in range(6)]
    assert len({tuple(h) for h in others}) > 1  # the seed matters
    with pytest.raises(ValueError, match="row 0 has no 'country'"):
        splits.split_descriptions([{"description_id": "d"}])


def test_loader_restricts_to_heldout_and_refuses_trained_descriptions(tmp_path: Path) -> None:
    rows = bundled_rows()
    split = splits.split_descriptions(rows, 0.5, seed=0)
    split_file = split.save(tmp_path / "split.json")
    held = loader.load_adaculturesafe("knowledge", culturesafe_data="bundled", culturesafe_split=str(split_file))
    assert set(held["test"]["description_id"]) == set(split.heldout)
    assert len(held["test"]) == sum(r["description_id"] in set(split.heldout) for r in rows)

    adapter = tmp_path / "adapter"
    splits.write_training_manifest(adapter, split, split.train, base_model="tiny")
    # evaluating the held-out part with the adapter is fine; the whole set is refused, naming the manifest
    loader.load_adaculturesafe(
        "knowledge", culturesafe_data="bundled", culturesafe_split=str(split_file), peft=str(adapter)
    )
    with pytest.raises(ValueError, match=r"were used to train the model \(.*culturesafe_training.json\)"):
        loader.load_adaculturesafe("knowledge", culturesafe_data="bundled", peft=str(adapter))
    with pytest.raises(ValueError, match="held-out"):
        splits.write_training_manifest(tmp_path / "bad", split, split.heldout[:1])
