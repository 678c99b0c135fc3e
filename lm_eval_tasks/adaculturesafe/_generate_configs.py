"""Write the per-country task YAMLs and the group YAMLs of this folder (lm-eval's tasks/mmlu style).

Countries come from a built dataset (``--dataset DIR``, as written by ``culturesafe build``) or from
the command line (``--countries "China,Viet Nam"``); never from a list in code. The committed files
cover the six countries of the public release:

    python _generate_configs.py --countries "China,India,Spain,Thailand,Ukraine,Viet Nam"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml


def _families() -> dict[str, tuple[str, str, str, dict, list[str]]]:
    """family -> (template file, dataset kind, alias suffix, extra dataset kwargs, group metrics macro-averaged),
    read from the one task taxonomy (culturesafe_ext.tasks.taxonomy)."""
    from culturesafe_ext.tasks.taxonomy import ADACULTURESAFE, families

    return {
        f.infix: (f.template, f.dataset_kind, f.alias, dict(f.dataset_kwargs), list(f.group_metrics))
        for f in families(ADACULTURESAFE)
    }


TOP_GROUP = "adaculturesafe"


def slug(name: str) -> str:
    from culturesafe_ext.data.adaculturesafe_schema import slug as schema_slug

    return schema_slug(name)


def countries_from_dataset(folder: Path) -> list[str]:
    """Country names in the order the builder wrote them (the ``knowledge`` config)."""
    import datasets

    rows = datasets.load_dataset(str(folder), name="knowledge", split="test")
    return list(dict.fromkeys(rows["country"]))


def _dump(path: Path, data: dict) -> None:
    with path.open("w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)


def write_configs(countries: list[str], out: Path) -> list[Path]:
    written = []
    families = _families()
    for family, (template, dataset_kind, alias, extra, metrics) in families.items():
        tasks = []
        for country in countries:
            task = f"{TOP_GROUP}_{family}_{slug(country)}"
            tasks.append(task)
            path = out / f"{task}.yaml"
            _dump(
                path,
                {
                    "include": template,
                    "task": task,
                    "task_alias": f"{country} ({alias})",
                    "dataset_kwargs": {"culturesafe_config": f"{dataset_kind}_{slug(country)}", **extra},
                },
            )
            written.append(path)
        group = out / f"_{TOP_GROUP}_{family}.yaml"
        _dump(
            group,
            {
                "group": f"{TOP_GROUP}_{family}",
                "task": tasks,
                "aggregate_metric_list": [{"metric": m, "weight_by_size": False} for m in metrics],
                "metadata": {"version": 1.0},
            },
        )
        written.append(group)
    top = out / f"_{TOP_GROUP}.yaml"
    _dump(
        top,
        {"group": TOP_GROUP, "task": [f"{TOP_GROUP}_{f}" for f in families], "metadata": {"version": 1.0}},
    )
    written.append(top)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="a dataset folder written by `culturesafe build`")
    source.add_argument("--countries", help="comma-separated English country names")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    if args.dataset:
        countries = countries_from_dataset(args.dataset)
    else:
        countries = [c.strip() for c in args.countries.split(",") if c.strip()]
    for path in write_configs(countries, args.out):
        print(path)


if __name__ == "__main__":
    main()
