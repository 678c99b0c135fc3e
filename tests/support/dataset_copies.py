"""Copies of the bundled AdaCultureSafe sample as a forger would make them: a subset of some configs' documents,
written with the project's own Hub-layout writer, so the copy loads like a real build and its card is consistent
with its (smaller) content."""

from __future__ import annotations

from pathlib import Path

from culturesafe_ext.data import loader


def subset_copy(out: Path, keep: dict[str, int]) -> Path:
    """``out`` holding each config of ``keep`` (name -> how many of its first documents) from the bundled sample."""
    from culturesafe_ext.builders.hub_layout import CardText, ConfigTable, write_hub_dataset

    tables = []
    for config, n in keep.items():
        data = loader.load_config(config, loader.BUNDLED, None)
        for split, rows in data.items():
            tables.append(ConfigTable(config, split, rows.features, list(rows.select(range(min(n, len(rows)))))))
    write_hub_dataset(out, tables, CardText(pretty_name="AdaCultureSafe", summary="The released dataset (v1.0)."))
    return out
