"""The dataset's content fingerprint: published in the card by the builder, equal to what the loader reads, and
different for any copy that drops, adds or changes a document (whatever the copy calls itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from culturesafe_ext.data import loader
from culturesafe_ext.data.fingerprint import fingerprint, of_dataset, published


def test_the_same_documents_in_any_order_give_one_fingerprint_and_a_changed_one_another() -> None:
    docs = [{"id": 1, "q": "ä", "options": ["a", "b"]}, {"id": 2, "q": "b", "options": []}]
    assert fingerprint(docs) == fingerprint(list(reversed(docs)))
    assert fingerprint(docs)["num_examples"] == 2
    assert fingerprint(docs[:1]) != fingerprint(docs)
    assert fingerprint([docs[0], {**docs[1], "q": "c"}]) != fingerprint(docs)
    assert fingerprint([docs[0], docs[0]]) != fingerprint(docs[:1])  # a duplicate counts


@pytest.mark.parametrize("dataset", [loader.ADACULTURESAFE, loader.CULTURAX], ids=lambda d: d.name)
def test_the_bundled_card_publishes_the_fingerprint_of_every_config_the_loader_reads(dataset) -> None:
    cards = published(dataset.bundled / "README.md")
    assert cards, "the bundled card publishes no fingerprints: refresh it (culturesafe_ext.builders.bundled)"
    for config, splits in cards.items():
        assert of_dataset(loader.load_config(config, loader.BUNDLED, None, dataset)) == splits, config


def test_a_subset_copy_has_another_fingerprint_than_the_released_card(tmp_path: Path) -> None:
    """A copy written with the builder's own writer publishes its own (smaller) fingerprint: honest about itself,
    different from the released card, which is the one ``leaderboard validate`` trusts."""
    from support.dataset_copies import subset_copy

    copy = subset_copy(tmp_path / "copy", {"knowledge_china": 2})
    content = of_dataset(loader.load_config("knowledge_china", str(copy), "v1.0"))
    assert content["test"]["num_examples"] == 2
    assert content == published(copy / "README.md")["knowledge_china"]
    assert content != published(loader.ADACULTURESAFE.bundled / "README.md")["knowledge_china"]
