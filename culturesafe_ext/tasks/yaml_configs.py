"""``culturesafe tasks write-configs adaculturesafe|culturax``: the per-country / per-domain task YAMLs and groups.

lm-eval's tasks/mmlu style: one YAML per unit (a country, a UNESCO domain) including its family's template, one
group YAML per family, one top group. Units come from a built dataset (``--dataset DIR``) or the command line
(``--countries`` / ``--domains``), never from a list in code; task names and dataset keys come from
:mod:`culturesafe_ext.tasks.taxonomy` and the schemas. ``--out`` is created and receives the family templates
too, so it is a self-contained folder for ``lm_eval --include_path`` (the installed package has no source
checkout to write into). The committed files of ``lm_eval_tasks/`` are this command's output::

    culturesafe tasks write-configs adaculturesafe --countries "China,India,Spain,Thailand,Ukraine,Viet Nam" \
        --out lm_eval_tasks/adaculturesafe
    culturesafe tasks write-configs culturax --dataset ./culturax_data --out lm_eval_tasks/culturax
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

import yaml

METADATA = {"version": 1.0}


def dump(path: Path, data: dict) -> None:
    """One YAML file, keys in the order given, non-ASCII names kept readable."""
    with path.open("w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)


def write_family(
    out: Path,
    group: str,
    template: str,
    alias: str,
    units: list[tuple[str, str, dict]],
    metrics: list[str],
    weight_by_size: bool,
) -> list[Path]:
    """One family: a task YAML per ``(unit, task name, dataset_kwargs)`` and the group YAML over them.

    Each task file includes the family's ``template`` and is aliased ``"<unit> (<alias>)"``; the group
    aggregates ``metrics`` over its tasks (``weight_by_size``: a mean over samples, else over tasks).
    """
    written = []
    for unit, task, dataset_kwargs in units:
        path = out / f"{task}.yaml"
        dump(
            path,
            {"include": template, "task": task, "task_alias": f"{unit} ({alias})", "dataset_kwargs": dataset_kwargs},
        )
        written.append(path)
    path = out / f"_{group}.yaml"
    dump(
        path,
        {
            "group": group,
            "task": [task for _, task, _ in units],
            "aggregate_metric_list": [{"metric": m, "weight_by_size": weight_by_size} for m in metrics],
            "metadata": dict(METADATA),
        },
    )
    written.append(path)
    return written


def write_top_group(out: Path, group: str, tasks: list[str]) -> Path:
    """A benchmark's top group YAML over its family groups."""
    path = out / f"_{group}.yaml"
    dump(path, {"group": group, "task": tasks, "metadata": dict(METADATA)})
    return path


def tasks_dir(benchmark: str) -> Path:
    """The installed task folder of ``benchmark`` (``culturesafe_ext/lm_eval_tasks/<benchmark>``), where the
    family templates live; a source checkout's ``lm_eval_tasks/<benchmark>`` when the package is not installed."""
    spec = importlib.util.find_spec("culturesafe_ext.lm_eval_tasks")
    root = Path(spec.origin).parent if spec and spec.origin else Path(__file__).resolve().parents[2] / "lm_eval_tasks"
    return root / benchmark


def _copy_templates(benchmark: str, templates: set[str], out: Path) -> list[Path]:
    """The family templates beside the written files (the YAMLs ``include`` them by file name)."""
    source = tasks_dir(benchmark)
    copied = []
    for name in sorted(templates):
        target = out / name
        if (source / name).resolve() != target.resolve():
            shutil.copyfile(source / name, target)
            copied.append(target)
    return copied


# --- AdaCultureSafe: one unit per country -------------------------------------------------------------------
ADACULTURESAFE = "adaculturesafe"


def countries_from_dataset(folder: Path) -> list[str]:
    """Country names in the order the builder wrote them (the ``knowledge`` config)."""
    from culturesafe_ext.data.loader import load_folder

    rows = load_folder(folder, "knowledge", split="test")
    return list(dict.fromkeys(rows["country"]))


def write_adaculturesafe(countries: list[str], out: Path) -> list[Path]:
    from culturesafe_ext.data.adaculturesafe_schema import slug
    from culturesafe_ext.tasks.taxonomy import families

    written = []
    chosen = families(ADACULTURESAFE)
    for f in chosen:
        units = [
            (
                country,
                f"{ADACULTURESAFE}_{f.infix}_{slug(country)}",
                {"culturesafe_config": f"{f.dataset_kind}_{slug(country)}", **dict(f.dataset_kwargs)},
            )
            for country in countries
        ]
        written += write_family(
            out, f"{ADACULTURESAFE}_{f.infix}", f.template, f.alias, units, list(f.group_metrics), weight_by_size=False
        )
    written.append(write_top_group(out, ADACULTURESAFE, [f"{ADACULTURESAFE}_{f.infix}" for f in chosen]))
    return written + _copy_templates(ADACULTURESAFE, {f.template for f in chosen}, out)


# --- CulturaX: one unit per UNESCO domain -------------------------------------------------------------------
CULTURAX = "culturax"


def domains_from_dataset(folder: Path) -> list[str]:
    """UNESCO domains present in the build, in the framework's order (a domain without questions gets no task)."""
    from culturesafe_ext.data.culturax_schema import DOMAINS
    from culturesafe_ext.data.loader import load_folder

    rows = load_folder(folder, "all")
    present = {d for split in rows.values() for d in split["domain"]}
    return [d for d in DOMAINS if d in present]


def write_culturax(domains: list[str], out: Path) -> list[Path]:
    from culturesafe_ext.data.culturax_schema import config_name
    from culturesafe_ext.tasks.taxonomy import families

    written = []
    chosen = families(CULTURAX)
    for f in chosen:
        infix = f"{f.infix}_" if f.infix else ""
        units = [
            (domain, f"{CULTURAX}_{infix}{config_name(domain)}", {"culturax_config": config_name(domain)})
            for domain in domains
        ]
        written += write_family(out, f.group, f.template, f.alias, units, list(f.group_metrics), weight_by_size=True)
    return written + _copy_templates(CULTURAX, {f.template for f in chosen}, out)


# --- the command ------------------------------------------------------------------------------------------
# benchmark -> (units flag, its help, how units are read from a build, the writer)
BENCHMARKS = {
    ADACULTURESAFE: (
        "countries",
        "comma-separated English country names",
        countries_from_dataset,
        write_adaculturesafe,
    ),
    CULTURAX: ("domains", "comma-separated UNESCO domain names", domains_from_dataset, write_culturax),
}


def add_arguments(parser: argparse.ArgumentParser, benchmark: str) -> None:
    flag, units_help, _, _ = BENCHMARKS[benchmark]
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, metavar="DIR", help="a dataset folder written by `culturesafe build`")
    source.add_argument(f"--{flag}", help=units_help)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write (created)")


def run(args: argparse.Namespace) -> int:
    flag, _, from_dataset, write = BENCHMARKS[args.benchmark]
    units = from_dataset(args.dataset) if args.dataset else [u.strip() for u in getattr(args, flag).split(",")]
    units = [u for u in units if u]
    if not units:
        raise ValueError(f"--{flag}: no {flag} given")
    args.out.mkdir(parents=True, exist_ok=True)
    for path in write(units, args.out):
        print(path)
    print(f"use: lm_eval --include_path {args.out} --tasks ... (and --metadata for the dataset)")
    return 0
