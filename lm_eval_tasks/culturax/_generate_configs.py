"""Write the per-domain task YAMLs and the group YAMLs of this folder (lm-eval's tasks/mmlu style).

Domains come from a built dataset (``--dataset DIR``, as written by ``culturesafe build culturax``)
or from the command line (``--domains "Books and Press,Tourism"``); a domain without questions gets
no task. The committed files cover the eight UNESCO domains that the public release populates:

    python _generate_configs.py --dataset ./culturax_data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

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


def _dump(path: Path, data: dict) -> None:
    with path.open("w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)


def write_configs(domains: list[str], out: Path) -> list[Path]:
    from culturesafe_ext.data.culturax_schema import config_name

    written = []
    for group, (template, infix, alias) in FAMILIES.items():
        tasks = []
        for domain in domains:
            task = f"{TOP_GROUP}_{infix}{config_name(domain)}"
            tasks.append(task)
            path = out / f"{task}.yaml"
            _dump(
                path,
                {
                    "include": template,
                    "task": task,
                    "task_alias": f"{domain} ({alias})",
                    "dataset_kwargs": {"culturax_config": config_name(domain)},
                },
            )
            written.append(path)
        path = out / f"_{group}.yaml"
        _dump(
            path,
            {
                "group": group,
                "task": tasks,
                "aggregate_metric_list": [{"metric": m, "weight_by_size": True} for m in GROUP_METRICS],
                "metadata": {"version": 1.0},
            },
        )
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="a dataset folder written by `culturesafe build culturax`")
    source.add_argument("--domains", help="comma-separated UNESCO domain names")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    if args.dataset:
        domains = domains_from_dataset(args.dataset)
    else:
        domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    for path in write_configs(domains, args.out):
        print(path)


if __name__ == "__main__":
    main()
