"""Data coverage checks: the run used the released dataset at a recorded revision, every document exactly once.

The dataset is identified by content, not by name: the data the run names is loaded with THE loader and its
fingerprint (:mod:`culturesafe_ext.data.fingerprint`) must equal the one the released dataset's card
publishes, so a copy or a subset is refused whatever ``culturesafe_revision`` it carries.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from culturesafe_ext.leaderboard.recompute import plain
from culturesafe_ext.leaderboard.refusals import Refusal
from culturesafe_ext.tasks.taxonomy import ADACULTURESAFE, BENCHMARKS, benchmark_of


def check_dataset(where: str, task: str, config: dict, allow_bundled: bool) -> list[Refusal]:
    """The dataset source and revision the task logged (each benchmark's own metadata keys)."""
    metadata = config.get("metadata", {}) or {}
    benchmark = benchmark_of(task) or BENCHMARKS[ADACULTURESAFE]
    data_key, revision_key = benchmark.metadata_key, benchmark.revision_key
    source, revision = metadata.get(data_key), metadata.get(revision_key)
    if source == "bundled":
        if not allow_bundled:
            return [Refusal(where, f"task {task!r}: evaluated on the bundled sample, not the released dataset")]
    elif not source or not revision:
        return [
            Refusal(
                where,
                f"task {task!r}: dataset revision not recorded (metadata {data_key}={source!r}, "
                f"{revision_key}={revision!r}): pass both in --metadata so they are logged",
            )
        ]
    return []


def check_fingerprint(where: str, task: str, config: dict, references: tuple[str, ...]) -> list[Refusal]:
    """The content fingerprint of the data the run names equals the released dataset's published one.

    The reference card: the bundled sample's own (shipped in the package) for a run on it; else each
    ``references`` entry (a folder written by ``culturesafe build``, or a Hub id read at the run's revision)
    that publishes the task's config; without references, the benchmark's Hub dataset at the run's revision.
    """
    from culturesafe_ext.data import loader

    metadata = config.get("metadata", {}) or {}
    benchmark = benchmark_of(task) or BENCHMARKS[ADACULTURESAFE]
    source, revision = metadata.get(benchmark.metadata_key), metadata.get(benchmark.revision_key)
    config_key = benchmark.metadata_key.replace("_data", "_config")
    name = (config.get("dataset_kwargs") or {}).get(config_key)
    if not name:
        return [Refusal(where, f"task {task!r}: no dataset config logged (dataset_kwargs {config_key})")]
    dataset = loader.CULTURAX if benchmark.name == loader.CULTURAX.name else loader.ADACULTURESAFE
    if source == loader.BUNDLED:
        candidates: tuple[str, ...] = (str(dataset.bundled),)
    else:
        candidates = references or (benchmark.hub_id,)
    expected, where_found, problems = None, "", []
    for reference in candidates:
        try:
            cards = _published(reference, revision)
        except Exception as err:  # noqa: BLE001 - an unreadable reference is said, then the next is tried
            problems.append(f"{reference}: {type(err).__name__}: {err}")
            continue
        if name in cards:
            expected, where_found = cards[name], reference
            break
        problems.append(f"{reference}: its card publishes no fingerprint of config {name!r}")
    if expected is None:
        return [
            Refusal(
                where,
                f"task {task!r}: no released dataset card to check the data against ({'; '.join(problems)}): pass "
                "--reference-data with the released dataset (a folder written by 'culturesafe build', or its Hub id)",
            )
        ]
    try:
        actual = _content(name, str(source) if source else None, revision, dataset.name)
    except Exception as err:  # noqa: BLE001 - data that cannot be loaded here cannot be shown to be the release
        return [Refusal(where, f"task {task!r}: cannot load the data it names ({source!r} config {name!r}): {err}")]
    if actual != expected:
        said = ", ".join(
            f"{split}: {v.get('num_examples')} docs sha256 {str(v.get('sha256'))[:12]}" for split, v in actual.items()
        )
        published = ", ".join(
            f"{split}: {v.get('num_examples')} docs sha256 {str(v.get('sha256'))[:12]}" for split, v in expected.items()
        )
        return [
            Refusal(
                where,
                f"task {task!r}: the data it ran on ({benchmark.metadata_key}={source!r}, "
                f"{benchmark.revision_key}={revision!r}, config {name!r}) is not the released dataset by content "
                f"({said}; the card of {where_found} publishes {published}): a copy or subset is not accepted",
            )
        ]
    return []


@lru_cache(maxsize=32)
def _published(reference: str, revision: str | None) -> dict:
    """config -> split -> fingerprint, from a local build's card or a Hub dataset's card at ``revision``."""
    from culturesafe_ext.data.fingerprint import published

    folder = Path(reference).expanduser()
    if folder.is_dir():
        card = folder / "README.md"
        if not card.is_file():
            raise FileNotFoundError(f"{card}: no dataset card")
        return published(card)
    from huggingface_hub import hf_hub_download

    return published(Path(hf_hub_download(reference, "README.md", repo_type="dataset", revision=revision)))


@lru_cache(maxsize=64)
def _content(name: str, source: str | None, revision: str | None, dataset_name: str) -> dict:
    from culturesafe_ext.data import loader
    from culturesafe_ext.data.fingerprint import of_dataset

    dataset = loader.CULTURAX if dataset_name == loader.CULTURAX.name else loader.ADACULTURESAFE
    return of_dataset(loader.load_config(name, source, revision, dataset))


def _comparable(doc: dict) -> dict:
    """A doc without the judge settings (the loader re-resolves those from this machine's environment)."""
    return {k: v for k, v in doc.items() if k != "judge_settings"}


def check_documents(sp: str, task: str, task_obj: Any, rows: list[dict]) -> list[Refusal]:
    """Every document of the dataset revision exactly once, and each logged doc equal to it."""
    docs = list(task_obj.eval_docs)
    seen = Counter(r.get("doc_id") for r in rows)
    twice = sorted(d for d, n in seen.items() if n > 1)
    missing = [i for i in range(len(docs)) if i not in seen]
    unknown = sorted(d for d in seen if not isinstance(d, int) or not 0 <= d < len(docs))
    out = []
    if twice:
        out.append(Refusal(sp, f"task {task!r}: doc_id {twice[:10]} logged more than once"))
    if missing:
        out.append(
            Refusal(
                sp,
                f"task {task!r}: {len(missing)} of the dataset's {len(docs)} documents are not in the samples "
                f"(doc_id {missing[:10]})",
            )
        )
    if unknown:
        out.append(Refusal(sp, f"task {task!r}: doc_id {unknown[:10]} is not a document of the dataset"))
    changed = [
        r["doc_id"]
        for r in rows
        if r.get("doc_id") not in unknown and _comparable(plain(docs[r["doc_id"]])) != _comparable(r.get("doc", {}))
    ]
    if changed:
        out.append(Refusal(sp, f"task {task!r}: doc_id {changed[:10]} differs from the dataset's document"))
    return out
