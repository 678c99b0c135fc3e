"""The report's routing and probe sections on hand-made runs whose accuracies, gaps and overlaps are known."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.lm_eval_files import DATE_ID, knowledge_rows, safety_rows, write_run

from culturesafe_ext.analysis.parts import Options
from culturesafe_ext.analysis.parts import probe as probe_part
from culturesafe_ext.analysis.parts import routing as routing_part
from culturesafe_ext.analysis.report import analyze, render_html
from culturesafe_ext.analysis.routing_compare import FORMAT, compare
from culturesafe_ext.cli import main
from culturesafe_ext.routing.route_tags import make_tag

# acc per (routing mode, country); questions per task: 4
ACC = {
    "none": {"aland": 0.25, "borduria": 0.5},
    "fixed:aland": {"aland": 0.75, "borduria": 0.25},
    "learned": {"aland": 0.5, "borduria": 0.5},
    "oracle": {"aland": 1.0, "borduria": 0.75},
}
# the adapter each question of a country is routed to, per mode (oracle: always right)
ROUTES = {
    "none": {"aland": ["__base__"] * 4, "borduria": ["__base__"] * 4},
    "fixed:aland": {"aland": ["aland"] * 4, "borduria": ["aland"] * 4},
    "learned": {"aland": ["aland", "aland", "aland", "borduria"], "borduria": ["borduria"] * 4},
    "oracle": {"aland": ["aland"] * 4, "borduria": ["borduria"] * 4},
}


def section_of(page: str, name: str) -> str:
    section = page[page.index(f"<section id='{name}'>") :]
    return section[: section.index("</section>")]


def write_router_run(folder: Path, routing: str, router: Path) -> Path:
    """An hf-router output folder in lm-eval 0.4.13's layout, route tags in the logged arguments."""
    sub = folder / "base-model"
    sub.mkdir(parents=True)
    results, configs, n_samples = {}, {}, {}
    for country in ("aland", "borduria"):
        task = f"adaculturesafe_knowledge_{country}"
        results[task] = {"alias": task, "acc,none": ACC[routing][country], "acc_stderr,none": 0.1}
        configs[task] = {"task": task, "dataset_kwargs": {"culturesafe_config": f"knowledge_{country}"}}
        n_samples[task] = {"original": 4, "effective": 4}
        rows = knowledge_rows(country.title(), f"{country}0", [1, 0, 1, 0])
        for i, (row, route) in enumerate(zip(rows, ROUTES[routing][country], strict=True)):
            tag = make_tag(route, "fp")  # what hf-router appends to each request's arguments
            arguments = {f"gen_args_{j}": {"arg_0": "q", "arg_1": f" {x}", "arg_2": tag} for j, x in enumerate("AB")}
            row.update(doc_id=i, arguments=arguments)
        (sub / f"samples_{task}_{DATE_ID}.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    model_args = f"pretrained=base-model,adapters=/nowhere/adapters,routing={routing}"
    if routing == "learned":
        model_args += f",router={router}"
    data = {
        "results": results,
        "group_subtasks": {t: [] for t in results},
        "configs": configs,
        "n-samples": n_samples,
        "config": {"model": "hf-router", "model_args": model_args, "routing": routing},
        "model_name": "base-model",
    }
    (sub / f"results_{DATE_ID}.json").write_text(json.dumps(data))
    return sub


@pytest.fixture(scope="module")
def router_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("routing")
    router = root / "router"
    router.mkdir()
    (router / "router_eval.json").write_text(json.dumps({"heldout_accuracy": 0.8, "n_correct": 8, "n_heldout": 10}))
    return {mode: write_router_run(root / mode.replace(":", "-"), mode, router) for mode in ACC}


def test_routing_section_numbers(router_runs: dict[str, Path]) -> None:
    analysis = analyze(list(router_runs.values()), Options(n_resamples=50))
    results = analysis["parts"]["routing"]
    assert sorted(e["routing"] for e in results.values()) == sorted(ACC)
    report = routing_part.combined(results)
    assert report["format"] == FORMAT and list(report["runs"]) == ["base", "fixed:aland", "learned", "oracle"]
    table = report["table"]["adaculturesafe_knowledge"]
    assert table["aland"]["oracle"] == {"value": 1.0, "stderr": 0.1, "n": 4}
    assert report["macro"]["adaculturesafe_knowledge"]["base"] == {"value": 0.375, "n_countries": 2}
    gap = report["oracle_minus_learned"]["adaculturesafe_knowledge"]
    assert gap["by_country"] == {"aland": 0.5, "borduria": 0.25} and gap["macro"] == 0.375
    accuracy = report["routing_accuracy"]
    # two options per question, each request tagged: 2 x 4 requests per country
    assert accuracy["learned"]["by_country"] == {"aland": {"correct": 6, "n": 8}, "borduria": {"correct": 8, "n": 8}}
    assert {k: (a["correct"], a["n"]) for k, a in accuracy.items()} == {
        "base": (0, 16),
        "fixed:aland": (8, 16),
        "learned": (14, 16),
        "oracle": (16, 16),
    }
    assert report["router"] == {"heldout_accuracy": 0.8, "n_correct": 8, "n_heldout": 10}
    # the command-line comparison is the same table, and finds the router from the learned run's model args
    cli = compare({name: router_runs[mode] for name, mode in zip(report["runs"], ACC, strict=True)})
    assert cli["table"] == report["table"] and cli["oracle_minus_learned"] == report["oracle_minus_learned"]
    assert cli["router"] == report["router"]

    page = render_html(analysis)
    section = section_of(page, "routing")
    assert "+0.375" in section and "+0.500" in section and "+0.250" in section
    assert "14/16" in section and "16/16" in section and "0/16" in section
    assert "0.800 (8/10 prompts)" in section
    assert section.count("<img") == 1 and 'src="http' not in page and "<script src" not in page


def test_routing_warns_when_router_eval_is_missing(router_runs: dict[str, Path], tmp_path: Path) -> None:
    evaluation = router_runs["learned"].parent.parent / "router" / "router_eval.json"
    evaluation.rename(tmp_path / "moved.json")
    try:
        page = render_html(analyze([router_runs["learned"], router_runs["oracle"]], Options(n_resamples=50)))
    finally:
        (tmp_path / "moved.json").rename(evaluation)
    assert re.search(r"router_eval.json: no router evaluation", page)
    assert "Router held-out accuracy" not in page


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.probe_stats import write_stats

    folder = write_run(
        tmp_path_factory.mktemp("probe"),
        {
            "adaculturesafe_knowledge_gen_aland": knowledge_rows("Aland", "a0", [1, 0]),
            "adaculturesafe_safety_aland": safety_rows("Aland", "a0", [5.0]),
        },
    )
    stats = folder / "handmade" / "probe_stats"
    write_stats(stats, "adaculturesafe_knowledge_gen_aland", range(0, 10), seed=1)
    write_stats(stats, "adaculturesafe_safety_aland", range(5, 15), seed=2)
    return folder


def test_probe_section_from_the_runs_stats(probe_run: Path) -> None:
    from support.probe_stats import LAYERS, WIDTH, K

    from culturesafe_ext.probing.overlap import chance

    analysis = analyze([probe_run], Options(n_resamples=200))
    stats = analysis["parts"]["probe"]["handmade"]["stats"]
    assert stats["groups"]["knowledge"]["n_docs"] == 40 and stats["groups"]["safety"]["n_tokens"] == 160
    [pair] = stats["comparisons"]
    assert (pair["a"], pair["b"], pair["permutations"]) == ("knowledge", "safety", 200)
    assert [r["intersection"] for r in pair["layers"]] == [5] * LAYERS
    assert [r["jaccard"] for r in pair["layers"]] == pytest.approx([5 / 15] * LAYERS)
    assert pair["layers"][0]["expected_jaccard"] == pytest.approx(chance(WIDTH, K)[1])
    assert all(r["p_perm"] < 0.05 and r["p_above_chance"] < 1e-3 for r in pair["layers"])
    page = render_html(analysis)
    section = section_of(page, "probe")
    assert "5/10" in section and "0.333" in section and section.count("<img") == 1
    assert "knowledge: 40 documents, 160 tokens" in section and 'src="http' not in page


def test_probe_section_embeds_a_probe_compare_report(probe_run: Path, tmp_path: Path) -> None:
    import shutil

    from culturesafe_ext.probing.overlap import REPORT

    run = tmp_path / "run"
    shutil.copytree(probe_run, run)
    stats = run / "handmade" / "probe_stats"
    out = run / "handmade" / "compare"
    groups = [f"k={stats}/*knowledge*.npz", f"s={stats}/*safety*.npz"]
    assert main(["probe", "compare", *groups, "--permutations", "50", "--out", str(out)]) == 0
    shutil.rmtree(stats)  # only the report is left
    analysis = analyze([run], Options(n_resamples=50))
    [report] = analysis["parts"]["probe"]["handmade"]["reports"]
    assert "stats" not in analysis["parts"]["probe"]["handmade"]
    written = json.loads((out / "probe_compare.json").read_text())
    assert report["comparisons"] == written["comparisons"] and report["groups"] == written["groups"]
    assert section_of(render_html(analysis), "probe").count("<img") == 1
    assert probe_part.REPORT == REPORT


def test_sections_absent_without_their_data(tmp_path: Path) -> None:
    run = write_run(tmp_path, {"adaculturesafe_knowledge_gen_aland": knowledge_rows("Aland", "a0", [1, 0])})
    analysis = analyze([run], Options(n_resamples=50))
    assert "routing" not in analysis["parts"] and "probe" not in analysis["parts"]
    page = render_html(analysis)
    assert "id='routing'" not in page and "id='probe'" not in page


def test_analyze_routing_command_writes_the_same_table(
    router_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from culturesafe_ext.cli import main

    out = tmp_path / "cmp.json"
    runs = [f"--run={name}={router_runs[name]}" for name in ACC]
    assert main(["analyze", "routing", *runs, "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == compare({name: router_runs[name] for name in ACC})
    assert "router held-out accuracy: 0.800" in capsys.readouterr().out
