"""The one dataset loader: every culturesafe task loads its data through this module.

lm-eval calls a loader through the task YAML's ``custom_dataset:`` hook with the merged ``--metadata``
and model_args as keyword arguments. Each dataset (AdaCultureSafe, CulturaX) is a :class:`DatasetSource`:
where its data comes from is chosen, in order, by a metadata key (``culturesafe_data`` /
``culturax_data``), an environment variable (``CULTURESAFE_DATA`` / ``CULTURESAFE_CULTURAX_DATA``) or
its default Hub id. A value is a Hub dataset id, a local folder written by ``culturesafe build``, or
``bundled`` (a small sample shipped in the wheel: the release builder's output on upstream-format sources,
kept equal to a fresh build by :mod:`culturesafe_ext.builders.bundled` and its test; this module only reads it).
:func:`load_adaculturesafe` and :func:`load_culturax` are thin entry points over the same code.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from culturesafe_ext.data import culturax_schema
from culturesafe_ext.data.adaculturesafe_schema import DEFAULT_HUB_ID

log = logging.getLogger("culturesafe")

DATA_ENV = "CULTURESAFE_DATA"
CULTURAX_DATA_ENV = "CULTURESAFE_CULTURAX_DATA"
BUNDLED = "bundled"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"

HOW_TO_BUILD = (
    "The culturesafe tasks could not load the dataset {where!r} ({reason}). Build it locally from the "
    "authors' release (git clone https://github.com/khk-abc/AdaCultureSafe) with one command: "
    "`culturesafe build adaculturesafe --source AdaCultureSafe/data --out ./adaculturesafe_data`, then "
    'point the tasks at it with `--metadata \'{{"culturesafe_data": "./adaculturesafe_data"}}\'` or '
    "`export CULTURESAFE_DATA=./adaculturesafe_data`; or try the bundled sample with "
    "`CULTURESAFE_DATA=bundled`."
)
HOW_TO_BUILD_CULTURAX = (
    "The culturax tasks could not load the dataset {where!r} ({reason}). Build it locally from the "
    "authors' release (git clone https://github.com/gskgautam/AlignCultura) with one command: "
    "`culturesafe build culturax --source AlignCultura/CulturaX.csv --out ./culturax_data`, then "
    'point the tasks at it with `--metadata \'{{"culturax_data": "./culturax_data"}}\'` or '
    "`export CULTURESAFE_CULTURAX_DATA=./culturax_data`; or try the bundled sample with "
    "`CULTURESAFE_CULTURAX_DATA=bundled`."
)


@dataclass(frozen=True)
class DatasetSource:
    """How one dataset is found: its metadata key, env var, default Hub id and bundled sample."""

    name: str
    metadata_key: str
    env: str
    default_hub_id: str
    how_to_build: str

    @property
    def bundled(self) -> Path:
        """The shipped sample: a folder as ``culturesafe build`` writes it."""
        return BUNDLED_ROOT / self.name

    def resolve(self, value: str | None = None) -> str:
        """The data source in force: explicit argument, then env var, then the default Hub id."""
        return str(value or os.environ.get(self.env) or self.default_hub_id)


ADACULTURESAFE = DatasetSource(
    name="adaculturesafe",
    metadata_key="culturesafe_data",
    env=DATA_ENV,
    default_hub_id=DEFAULT_HUB_ID,
    how_to_build=HOW_TO_BUILD,
)
CULTURAX = DatasetSource(
    name="culturax",
    metadata_key="culturax_data",
    env=CULTURAX_DATA_ENV,
    default_hub_id=culturax_schema.DEFAULT_HUB_ID,
    how_to_build=HOW_TO_BUILD_CULTURAX,
)


def resolve_source(culturesafe_data: str | None = None, dataset: DatasetSource = ADACULTURESAFE) -> str:
    """The data source in force for ``dataset``: explicit argument, then env var, then the default Hub id."""
    return dataset.resolve(culturesafe_data)


def bundled_dataset_dir(dataset: DatasetSource = ADACULTURESAFE) -> Path:
    """The bundled sample's folder (shipped in the wheel, never built here)."""
    folder = dataset.bundled
    if not (folder / "README.md").exists():
        raise FileNotFoundError(
            f"the bundled {dataset.name} sample is missing from {folder}: reinstall culturesafe, or in a checkout "
            "run `python -m culturesafe_ext.builders.bundled --out culturesafe_ext/data/bundled`"
        )
    return folder


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
    Secret-looking metadata is refused: lm-eval writes it into the results.
    """
    from culturesafe_ext.llm.settings import refuse_metadata_secrets

    refuse_metadata_secrets({"culturesafe_data": culturesafe_data, **model_args})
    dataset = load_config(culturesafe_config, culturesafe_data, culturesafe_revision)
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


def load_culturax(
    culturax_config: str = culturax_schema.ALL,
    culturax_data: str | None = None,
    culturax_revision: str | None = None,
    **_ignored,
):
    """Return the ``DatasetDict`` (train / validation / test) of one CulturaX config (``all`` or a domain).

    Other keyword arguments (the rest of lm-eval's metadata and the model_args) are accepted and ignored.
    """
    return load_config(culturax_config, culturax_data, culturax_revision, CULTURAX)


def load_config(
    config: str,
    data: str | None,
    revision: str | None,
    dataset: DatasetSource = ADACULTURESAFE,
):
    """The config as stored, from the bundled sample, a local build or the Hub."""
    import datasets

    where = dataset.resolve(data)
    if where == BUNDLED:
        path: str = str(bundled_dataset_dir(dataset))
    else:
        path = where
    local = Path(path).expanduser()
    is_local = local.is_dir()
    if not is_local and not _HUB_ID.fullmatch(path):
        raise FileNotFoundError(
            f"{dataset.metadata_key}={where!r}: no such folder, nor a Hub id of the form owner/name"
        )
    declared = _card_configs(local) if is_local else None
    available = None if declared is None else list(declared)
    if available is not None and config not in available:
        raise MissingUnitsError(missing_units_text(dataset, where, config, available))
    log.info("culturesafe: loading %s config %s", where, config)
    try:
        loaded = load_folder(local, config) if is_local else datasets.load_dataset(path, name=config, revision=revision)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as err:
        if is_local:
            raise
        raise RuntimeError(dataset.how_to_build.format(where=where, reason=f"{type(err).__name__}: {err}")) from err
    from culturesafe_ext.data.fingerprint import of_dataset

    for split, value in of_dataset(loaded).items():  # what `leaderboard validate` compares with the released card
        log.info(
            "culturesafe: %s config %s split %s: content sha256 %s (%d docs)",
            where,
            config,
            split,
            value["sha256"],
            value["num_examples"],
        )
    return loaded


def _card_configs(folder: Path) -> dict[str, dict] | None:
    """The configs a built dataset's card declares, by name (None when the folder has no card)."""
    card = folder / "README.md"
    if not card.exists():
        return None
    from huggingface_hub import DatasetCard

    configs = DatasetCard.load(card).data.to_dict().get("configs") or []
    return {c["config_name"]: c for c in configs}


def load_folder(folder: Path, config: str | None = None, split: str | None = None):
    """One config of a dataset folder on disk, read as it is now (every local read goes through here).

    Why the data files are passed: for a folder whose card declares its configs, ``datasets`` names its cache
    entry after the folder's basename, the config and a hash of the card alone (features, split sizes), not of the
    files. A second folder with the same name and card (another run's output, or the same folder rebuilt with
    same-sized rows) was then served the first one's cached arrow tables. Given explicitly, the data files are
    resolved to absolute paths with their modification times, and ``datasets`` hashes those into the config id:
    another folder or a rewritten file is a new cache entry, an unchanged folder still reuses its own.
    """
    import datasets
    from datasets.data_files import sanitize_patterns

    declared = (_card_configs(folder) or {}).get(config or "")
    data_files = sanitize_patterns(declared["data_files"]) if declared and declared.get("data_files") else None
    return datasets.load_dataset(str(folder), name=config, split=split, data_files=data_files)


class MissingUnitsError(SystemExit):
    """A task (or a group's task) asks for a country / domain the dataset lacks: one line, no traceback.

    A ``SystemExit`` on purpose: it is raised while lm-eval builds its tasks, where any other error ends in
    lm-eval's traceback; this one prints its message (naming what is missing and the command that writes the
    dataset's own task YAMLs) and exits with status 1.
    """


def _unit_names(dataset: DatasetSource, kind: str) -> dict[str, str]:
    """Config name -> the unit's display name (country or domain) for the committed task folder's units."""
    import json

    if dataset.name == CULTURAX.name:
        return {culturax_schema.config_name(d): d for d in culturax_schema.DOMAINS}
    from culturesafe_ext.data.adaculturesafe_schema import slug

    report = json.loads((bundled_dataset_dir(dataset) / "build_report.json").read_text(encoding="utf-8"))
    return {f"{kind}_{slug(country)}": country for country in report["countries"]}


def missing_units_text(dataset: DatasetSource, where: str, config: str, available: list[str]) -> str:
    """One line: the units the installed tasks cover that the dataset lacks (the asked one among them), what it
    has, and the command that writes task YAMLs for its own units."""
    kind = config.split("_", 1)[0] if dataset.name != CULTURAX.name else ""
    names = _unit_names(dataset, kind)
    missing = [name for c, name in names.items() if c not in available] or [names.get(config, config)]
    has = [names.get(c, c) for c in available if c in names] or available
    what, flag = ("domains", "domains") if dataset.name == CULTURAX.name else ("countries", "countries")
    return (
        f"culturesafe: the dataset at {where!r} lacks the {what} {', '.join(missing)} that the installed "
        f"{dataset.name} tasks ask for (task config {config!r}; it has: {', '.join(has)}). Write task YAMLs for "
        f"its own {what} and run those: `culturesafe tasks write-configs {dataset.name} --dataset {where} "
        f'--out ./{dataset.name}_tasks` (or --{flag} "..."), then `lm_eval --include_path ./{dataset.name}_tasks '
        "--tasks ...`"
    )
