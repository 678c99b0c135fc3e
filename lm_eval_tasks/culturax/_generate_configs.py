"""Write the per-domain task YAMLs and the group YAMLs of this folder (lm-eval's tasks/mmlu style).

Domains come from a built dataset (``--dataset DIR``, as written by ``culturesafe build culturax``)
or from the command line (``--domains "Books and Press,Tourism"``); a domain without questions gets
no task. The committed files cover the eight UNESCO domains that the public release populates:

    python _generate_configs.py --dataset ./culturax_data
"""

from __future__ import annotations

from pathlib import Path

from culturesafe_ext.tasks import yaml_configs

TOP_GROUP = "culturax"
# family -> (template file, task-name infix, alias suffix)
FAMILIES = {
    "culturax": ("_default_template_yaml", "", "sampled x3"),
    "culturax_greedy": ("_greedy_template_yaml", "greedy_", "greedy"),
}
GROUP_METRICS = ["wr", "ss", "ti", "avg", "truthful", "informative"]


def domains_from_dataset(folder: Path) -> list[str]:
    """UNESCO domains present in the build, in the framework's order."""
    import datasets

    from culturesafe_ext.data.culturax_schema import DOMAINS

    rows = datasets.load_dataset(str(folder), name="all")
    present = {d for split in rows.values() for d in split["domain"]}
    return [d for d in DOMAINS if d in present]


def write_configs(domains: list[str], out: Path) -> list[Path]:
    from culturesafe_ext.data.culturax_schema import config_name

    written = []
    for group, (template, infix, alias) in FAMILIES.items():
        units = [
            (domain, f"{TOP_GROUP}_{infix}{config_name(domain)}", {"culturax_config": config_name(domain)})
            for domain in domains
        ]
        written += yaml_configs.write_family(out, group, template, alias, units, GROUP_METRICS, weight_by_size=True)
    return written


def main() -> None:
    yaml_configs.main(
        __doc__,
        "domains",
        "comma-separated UNESCO domain names",
        "a dataset folder written by `culturesafe build culturax`",
        domains_from_dataset,
        write_configs,
        Path(__file__).resolve().parent,
    )


if __name__ == "__main__":
    main()
