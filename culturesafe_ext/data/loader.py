"""The one dataset loader: every culturesafe task loads through :func:`load_adaculturesafe`.

lm-eval calls it through the task YAML's ``custom_dataset:`` hook with the merged ``--metadata`` and
model_args as keyword arguments. Where the data comes from is chosen, in order, by
``--metadata '{"culturesafe_data": ...}'``, the ``CULTURESAFE_DATA`` environment variable, or
:data:`~culturesafe_ext.data.schema.DEFAULT_HUB_ID`. A value is a Hub dataset id, a local folder
written by ``culturesafe build``, or ``bundled`` (the small sample shipped in the wheel).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from culturesafe_ext.data.schema import DEFAULT_HUB_ID
from culturesafe_ext.paths import CACHE_ENV, cache_dir  # noqa: F401 - CACHE_ENV re-exported for tests

log = logging.getLogger("culturesafe")

DATA_ENV = "CULTURESAFE_DATA"
BUNDLED = "bundled"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
SAMPLE_SOURCE = Path(__file__).resolve().parent / "sample_source"

HOW_TO_BUILD = (
    "The culturesafe tasks could not load the dataset {where!r} ({reason}). Build it locally from the "
    "authors' release (git clone https://github.com/khk-abc/AdaCultureSafe) with one command: "
    "`culturesafe build adaculturesafe --source AdaCultureSafe/data --out ./adaculturesafe_data`, then "
    'point the tasks at it with `--metadata \'{{"culturesafe_data": "./adaculturesafe_data"}}\'` or '
    "`export CULTURESAFE_DATA=./adaculturesafe_data`; or try the bundled sample with "
    "`CULTURESAFE_DATA=bundled`."
)


def resolve_source(culturesafe_data: str | None = None) -> str:
    """The data source in force: explicit argument, then env var, then the default Hub id."""
    return str(culturesafe_data or os.environ.get(DATA_ENV) or DEFAULT_HUB_ID)


def bundled_dataset_dir() -> Path:
    """Build the bundled sample with the release builder (once per sample content) and return it."""
    files = sorted(SAMPLE_SOURCE.glob("*.json"))
    digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:16]
    target = cache_dir() / f"bundled-{digest}"
    if (target / "README.md").exists():
        return target
    from culturesafe_ext.builders import adaculturesafe

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="bundled-", dir=target.parent))
    try:
        adaculturesafe.build(SAMPLE_SOURCE, staging, source_commit="culturesafe bundled sample")
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_adaculturesafe(
    culturesafe_config: str,
    culturesafe_data: str | None = None,
    culturesafe_revision: str | None = None,
    culturesafe_split: str | None = None,
    **model_args,
):
    """Return the ``DatasetDict`` of one config (e.g. ``knowledge_china``) from the chosen source.

    ``culturesafe_split`` (a split file saved by a training command) keeps only its held-out
    descriptions. Other keyword arguments are the rest of the metadata and the model_args: a model
    argument naming a culturesafe-trained folder (``peft=``, ``adapters=``, ``router=``) makes the load
    fail if an evaluated description was trained on (see :mod:`culturesafe_ext.data.splits`).
    """
    dataset = _load(culturesafe_config, culturesafe_data, culturesafe_revision)
    from culturesafe_ext.data import splits

    where = f"{resolve_source(culturesafe_data)} config {culturesafe_config}"
    if culturesafe_split:
        held = splits.DescriptionSplit.load(culturesafe_split)
        dataset = splits.restrict_to(dataset, set(held.heldout))
        log.info(
            "culturesafe: %s restricted to the %d held-out descriptions of %s",
            where,
            len(held.heldout),
            culturesafe_split,
        )
    trained = splits.trained_descriptions(model_args)
    if trained:
        splits.refuse_overlap(dataset, trained, where)
    return dataset


def _load(culturesafe_config: str, culturesafe_data: str | None, culturesafe_revision: str | None):
    """The config as stored, from the bundled sample, a local build or the Hub."""
    import datasets

    where = resolve_source(culturesafe_data)
    if where == BUNDLED:
        path: str = str(bundled_dataset_dir())
    else:
        path = where
    local = Path(path).expanduser()
    is_local = local.is_dir()
    if not is_local and not _HUB_ID.fullmatch(path):
        raise FileNotFoundError(f"culturesafe_data={where!r}: no such folder, nor a Hub id of the form owner/name")
    available = _available_configs(local) if is_local else None
    if available is not None and culturesafe_config not in available:
        raise ValueError(
            f"The dataset at {where!r} has no config {culturesafe_config!r} (it has: {', '.join(available)}). "
            "Run only the tasks of the countries it contains, or regenerate the task YAMLs for it with "
            "`python -m culturesafe_ext.lm_eval_tasks.adaculturesafe._generate_configs --dataset <dir>`."
        )
    log.info("culturesafe: loading %s config %s", where, culturesafe_config)
    try:
        return datasets.load_dataset(
            str(local) if is_local else path, name=culturesafe_config, revision=culturesafe_revision
        )
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as err:
        if is_local:
            raise
        raise RuntimeError(HOW_TO_BUILD.format(where=where, reason=f"{type(err).__name__}: {err}")) from err


def _available_configs(folder: Path) -> list[str] | None:
    """Config names declared in a built dataset's card (None when the folder has no card)."""
    card = folder / "README.md"
    if not card.exists():
        return None
    from huggingface_hub import DatasetCard

    configs = DatasetCard.load(card).data.to_dict().get("configs") or []
    return [c["config_name"] for c in configs]
