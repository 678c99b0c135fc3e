"""``culturesafe probe compare`` on known overlaps, and hf-probe through the real lm_eval CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from culturesafe_ext.cli import main


def test_chance_level() -> None:
    from support.probe_stats import WIDTH, K

    from culturesafe_ext.probing.overlap import chance

    expected_inter, expected_j = chance(WIDTH, K)
    assert expected_inter == pytest.approx(K * K / WIDTH)
    rng = np.random.default_rng(0)
    sims = [
        len(set(rng.choice(WIDTH, K, replace=False)) & set(rng.choice(WIDTH, K, replace=False))) for _ in range(20000)
    ]
    assert expected_j == pytest.approx(np.mean([x / (2 * K - x) for x in sims]), abs=0.005)
    assert chance(50, 50) == (50.0, 1.0)


def test_overlap_chance_and_permutation_test(tmp_path: Path) -> None:
    from support.probe_stats import LAYERS, K, write_stats

    from culturesafe_ext.probing.overlap import compare
    from culturesafe_ext.probing.stats_file import load_stats

    a = load_stats(write_stats(tmp_path, "a", range(0, 10), seed=1))
    b = load_stats(write_stats(tmp_path, "b", range(5, 15), seed=2))
    a_again = load_stats(write_stats(tmp_path, "a2", range(0, 10), seed=3))
    rows = compare(a, b, K, permutations=300)
    assert [r["intersection"] for r in rows] == [5] * LAYERS
    assert rows[0]["jaccard"] == pytest.approx(5 / 15)
    assert rows[0]["p_above_chance"] < 1e-3  # 5 shared of 10 is far above the 1 expected by chance
    assert rows[0]["p_perm"] < 0.05  # and far below random re-splits of the same documents
    same = compare(a, a_again, K, permutations=300)
    assert same[0]["jaccard"] == 1.0 and same[0]["p_perm"] > 0.5
    by_rate = compare(a, b, K, rank_by="rate", permutations=0)
    assert by_rate[0]["intersection"] == 5 and by_rate[0]["p_perm"] is None


def test_cli_writes_json_and_plot(tmp_path: Path, capsys) -> None:
    from support.probe_stats import LAYERS, write_stats

    write_stats(tmp_path / "run", "knowledge_x", range(0, 10), seed=1)
    write_stats(tmp_path / "run", "knowledge_y", range(0, 10), seed=4)
    safety = write_stats(tmp_path / "other", "safety_x", range(50, 60), seed=2)
    out = tmp_path / "report"
    code = main(
        [
            "probe",
            "compare",
            f"knowledge={tmp_path / 'run'}/knowledge_*.npz",
            f"safety={safety}",
            "--permutations",
            "100",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((out / "probe_compare.json").read_text())
    assert report["groups"]["knowledge"]["n_docs"] == 80 and len(report["groups"]["knowledge"]["files"]) == 2
    [pair] = report["comparisons"]
    assert (pair["a"], pair["b"]) == ("knowledge", "safety")
    assert [r["jaccard"] for r in pair["layers"]] == [0.0] * LAYERS
    figures = [figure["file"] for figure in report["figures"]]
    assert figures == ["probe_compare.png", pair["figure"]]
    assert pair["figure"] == "probe_compare_1_knowledge_vs_safety.png"
    assert all((out / name).stat().st_size > 1000 for name in figures)
    assert report["format"] == "culturesafe-probe-compare/1"
    row = pair["layers"][0]  # disjoint hot sets: observed below every re-split quantile
    assert row["jaccard"] < row["resplit_jaccard_q05"] <= row["resplit_jaccard_median"] <= row["resplit_jaccard_q95"]
    printed = capsys.readouterr().out
    assert "knowledge (320 tokens, 80 docs) vs safety (160 tokens, 40 docs)" in printed


def test_few_documents_give_an_exact_test_that_says_it_cannot_reach_005(tmp_path: Path, capsys) -> None:
    """3 documents per group have 3 * 3 = 9 distinct half swaps: each is used once, p_perm is exact, its floor
    is 1/10, and the report says the test cannot reach 0.05 (issue 28: it printed p = 0.001 from 1000 draws)."""
    from support.probe_stats import LAYERS, K, write_stats

    from culturesafe_ext.probing.overlap import compare, distinct_resplits
    from culturesafe_ext.probing.stats_file import load_stats

    a = load_stats(write_stats(tmp_path, "a", range(0, 10), seed=1, buckets=3))
    b = load_stats(write_stats(tmp_path, "b", range(50, 60), seed=2, buckets=3))
    assert distinct_resplits(3, 3) == 9 and distinct_resplits(8, 8) == 70 * 70 and distinct_resplits(1, 5) == 0
    rows = compare(a, b, K, permutations=1000, seed=0)
    assert {(r["resplits"], r["resplits_distinct"], r["p_perm_exact"]) for r in rows} == {(9, 9, True)}
    # p_perm = (1 + re-splits as low as observed) / 10: a multiple of 0.1, never the 0.001 of 1000 draws
    assert all(r["p_perm"] >= 0.1 and r["p_perm"] * 10 == pytest.approx(round(r["p_perm"] * 10)) for r in rows)
    assert len(rows) == LAYERS
    assert rows[0]["p_perm_min"] == pytest.approx(0.1) and "cannot reach 0.05" in rows[0]["p_perm_note"]
    # exact means every re-split once: the seed and a larger budget change nothing
    again = compare(a, b, K, permutations=9, seed=7)
    assert [r["p_perm"] for r in again] == [r["p_perm"] for r in rows]
    assert [r["resplit_jaccard_median"] for r in again] == [r["resplit_jaccard_median"] for r in rows]
    drawn = compare(a, b, K, permutations=5, seed=0)  # fewer than the distinct ones: drawn, floor 1/6
    assert (drawn[0]["resplits"], drawn[0]["p_perm_exact"], drawn[0]["p_perm_min"]) == (5, False, pytest.approx(1 / 6))

    out = tmp_path / "report"
    assert main(["probe", "compare", f"k={tmp_path}/a*.npz", f"s={tmp_path}/b*.npz", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "permutation test: exact over all 9 distinct re-splits; smallest attainable p_perm 0.1" in printed
    assert "WARNING: only 9 distinct re-splits of 3 + 3 documents" in printed
    [pair] = json.loads((out / "probe_compare.json").read_text())["comparisons"]
    assert (pair["permutations"], pair["resplits_distinct"], pair["p_perm_exact"]) == (9, 9, True)


def test_many_documents_are_drawn_and_say_how_many_distinct_exist(tmp_path: Path, capsys) -> None:
    from support.probe_stats import write_stats

    write_stats(tmp_path, "a", range(0, 10), seed=1)
    write_stats(tmp_path, "b", range(50, 60), seed=2)
    out = tmp_path / "report"
    argv = ["probe", "compare", f"{tmp_path}/a*.npz", f"{tmp_path}/b*.npz", "--permutations", "200", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "permutation test: drawn: 200 of 4.9e+03 distinct re-splits; smallest attainable p_perm 0.00498" in printed
    assert "WARNING" not in printed
