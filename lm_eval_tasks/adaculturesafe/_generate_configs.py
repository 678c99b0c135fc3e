"""Write the per-country task YAMLs and the group YAMLs of this folder (lm-eval's tasks/mmlu style).

Countries come from a built dataset (``--dataset DIR``, as written by ``culturesafe build``) or from
the command line (``--countries "China,Viet Nam"``); never from a list in code. The committed files
cover the six countries of the public release:

    python _generate_configs.py --countries "China,India,Spain,Thailand,Ukraine,Viet Nam"
"""

from __future__ import annotations

from pathlib import Path

from culturesafe_ext.tasks import yaml_configs


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


def write_configs(countries: list[str], out: Path) -> list[Path]:
    written = []
    families = _families()
    for family, (template, dataset_kind, alias, extra, metrics) in families.items():
        units = [
            (
                country,
                f"{TOP_GROUP}_{family}_{slug(country)}",
                {"culturesafe_config": f"{dataset_kind}_{slug(country)}", **extra},
            )
            for country in countries
        ]
        written += yaml_configs.write_family(
            out, f"{TOP_GROUP}_{family}", template, alias, units, metrics, weight_by_size=False
        )
    written.append(yaml_configs.write_top_group(out, TOP_GROUP, [f"{TOP_GROUP}_{f}" for f in families]))
    return written


def main() -> None:
    yaml_configs.main(
        __doc__,
        "countries",
        "comma-separated English country names",
        "a dataset folder written by `culturesafe build`",
        countries_from_dataset,
        write_configs,
        Path(__file__).resolve().parent,
    )


if __name__ == "__main__":
    main()
