"""Every shipped task YAML is named by the one taxonomy, so no family can drop out of the analysis."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.paths import REPO

from culturesafe_ext.tasks import taxonomy

TASK_DIR = REPO / "lm_eval_tasks"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !function tags: the name is enough


def _yamls() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(TASK_DIR.rglob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        out.append((path, data))
    return out


LEAVES = [(p, d) for p, d in _yamls() if isinstance(d.get("task"), str)]
GROUPS = [(p, d) for p, d in _yamls() if "group" in d]


def test_the_shipped_folder_has_every_family() -> None:
    seen = {taxonomy.family_of(d["task"]).group for _, d in LEAVES}
    assert seen == {f.group for f in taxonomy.FAMILIES}


@pytest.mark.parametrize("path,data", LEAVES, ids=[p.name for p, _ in LEAVES])
def test_every_leaf_task_classifies_and_round_trips(path: Path, data: dict) -> None:
    task = data["task"]
    fam = taxonomy.family_of(task)
    assert fam is not None, f"{path.name}: task {task!r} is in no taxonomy family (the analysis would skip it)"
    assert taxonomy.classify(task) == (fam.kind, fam.label)
    assert taxonomy.task_name(fam, taxonomy.unit_of(task)) == task
    assert data["include"] == fam.template, f"{path.name}: includes {data['include']!r}, not {fam.template!r}"
    assert taxonomy.benchmark_of(task).name == fam.benchmark


@pytest.mark.parametrize("path,data", GROUPS, ids=[p.name for p, _ in GROUPS])
def test_family_groups_macro_average_the_taxonomy_metrics(path: Path, data: dict) -> None:
    group = data["group"]
    fam = next((f for f in taxonomy.FAMILIES if f.group == group), None)
    if fam is None:  # a benchmark's top group lists family groups
        assert group in taxonomy.BENCHMARKS, f"{path.name}: group {group!r} is neither a family nor a benchmark"
        assert set(data["task"]) == {f.group for f in taxonomy.families(group)}
        return
    assert [m["metric"] for m in data["aggregate_metric_list"]] == list(fam.group_metrics)
    assert all(taxonomy.family_of(t) == fam for t in data["task"])


def test_longest_prefix_wins_and_others_are_not_ours() -> None:
    assert taxonomy.classify("adaculturesafe_knowledge_gen_china") == ("knowledge", "gen")
    assert taxonomy.classify("adaculturesafe_knowledge_china") == ("knowledge", "mc")
    assert taxonomy.classify("adaculturesafe_safety_wrongcustom_viet_nam") == ("safety", "wrongcustom")
    assert taxonomy.classify("culturax_greedy_books_and_press") == ("culturax", "greedy")
    assert taxonomy.classify("culturax_books_and_press") == ("culturax", "sampled")
    assert taxonomy.classify("mmlu_anatomy") is None
    assert taxonomy.benchmark_of("culturax_greedy").metadata_key == "culturax_data"
