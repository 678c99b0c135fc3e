"""The one writer of the Hugging Face Hub dataset layout, and the one push to the Hub.

Layout: ``<out>/<config>/<split>.parquet`` per config and split, plus ``<out>/README.md``, a dataset
card whose YAML front matter declares ``configs`` (with ``data_files``) and ``dataset_info``
(features, split sizes) and each split's content fingerprint (:mod:`culturesafe_ext.data.fingerprint`), so
``datasets.load_dataset(<out or repo id>, <config>)`` reads exactly what was written, locally and on the Hub alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, Features, disable_progress_bars
from huggingface_hub import DatasetCard, DatasetCardData

from culturesafe_ext.data.fingerprint import CARD_KEY, fingerprint


@dataclass
class ConfigTable:
    """The rows of one config and split."""

    config: str
    split: str
    features: Features
    rows: list[dict]


@dataclass
class CardText:
    """What the card says besides the generated YAML: title, prose sections and citation."""

    pretty_name: str
    summary: str
    sections: list[tuple[str, str]] = field(default_factory=list)
    citation: str = ""
    license: str = "unknown"
    language: Sequence[str] = ("en",)
    tags: Sequence[str] = ()


def write_hub_dataset(out: Path, tables: Sequence[ConfigTable], card: CardText) -> list[Path]:
    """Write parquet files and the dataset card; return the written paths (relative to ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    disable_progress_bars()
    written: list[Path] = []
    fingerprints: dict[str, dict[str, dict]] = {}
    configs: dict[str, list[ConfigTable]] = {}
    nbytes: dict[tuple[str, str], int] = {}
    for table in tables:
        configs.setdefault(table.config, []).append(table)
        rel = Path(table.config) / f"{table.split}.parquet"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        if table.rows:
            dataset = Dataset.from_list(table.rows, features=table.features)
        else:  # from_list([]) loses the features; an empty split keeps its schema
            dataset = Dataset.from_dict({name: [] for name in table.features}, features=table.features)
        dataset.to_parquet(str(out / rel))
        nbytes[table.config, table.split] = dataset.data.nbytes
        # of the rows as written and read back (the loader's values), not of the Python rows given
        fingerprints.setdefault(table.config, {})[table.split] = fingerprint(dataset)
        written.append(rel)

    card_data = DatasetCardData(
        license=card.license,
        language=list(card.language),
        pretty_name=card.pretty_name,
        tags=list(card.tags) or None,
        configs=[
            {
                "config_name": name,
                "data_files": [{"split": t.split, "path": f"{name}/{t.split}.parquet"} for t in parts],
            }
            for name, parts in configs.items()
        ],
        dataset_info=[
            {
                "config_name": name,
                "features": parts[0].features._to_yaml_list(),
                "splits": [
                    {"name": t.split, "num_bytes": nbytes[name, t.split], "num_examples": len(t.rows)} for t in parts
                ],
            }
            for name, parts in configs.items()
        ],
        **{CARD_KEY: fingerprints},
    )
    body = [f"# {card.pretty_name}", "", card.summary, ""]
    for heading, text in card.sections:
        body += [f"## {heading}", "", text.rstrip(), ""]
    if card.citation:
        body += ["## Citation", "", "```bibtex", card.citation.strip(), "```", ""]
    DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(body)).save(out / "README.md")
    written.append(Path("README.md"))
    return written


def push_to_hub(out: Path, repo_id: str, *, private: bool = False, dry_run: bool = False) -> list[str]:
    """Upload ``out`` as a dataset repo with ``huggingface_hub``; ``dry_run`` lists what would go.

    The token comes from huggingface_hub's own resolution (``HF_TOKEN`` or ``hf auth login``).
    """
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(out),
        repo_id=repo_id,
        repo_type="dataset",
        commit_message=f"culturesafe build ({len(files)} files)",
    )
    return files
