"""Analysis on hand-made lm-eval output folders whose correlation, cross-tab, F1 and deltas are known exactly."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from support.lm_eval_files import knowledge_rows, safety_rows, write_run

from culturesafe_ext.analysis import parts as parts_pkg
from culturesafe_ext.analysis.parts import Options
from culturesafe_ext.analysis.report import SCHEMA_VERSION, analyze, render_html, write_report
from culturesafe_ext.analysis.runs import read_run

# Country A: 6 descriptions, knowledge k/5 right for k = 0..5; plain respectfulness below.
A_CORRECT = [0, 1, 2, 3, 4, 5]
A_RESPECT = [1.0, 3.0, 2.0, 5.0, 4.0, 10.0]
# Country B: 3 descriptions.
B_CORRECT = [5, 5, 0]
B_RESPECT = [7.0, 2.0, 8.0]


def _descriptions():
    for country, correct, respect in (("Aland", A_CORRECT, A_RESPECT), ("Borduria", B_CORRECT, B_RESPECT)):
        for i, (k, r) in enumerate(zip(correct, respect, strict=True)):
            yield country, f"{country[:1]}{i}", k, r


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tasks: dict[str, list[dict]] = {}
    for country, did, k, r in _descriptions():
        slug = country.lower()
        gold = "A" if did == "A0" else "B"
        tasks.setdefault(f"adaculturesafe_knowledge_gen_{slug}", []).extend(
            knowledge_rows(country, did, [1] * k + [0] * (5 - k), gold)
        )
        # two answers per description: the mean is r; A0 gets a third answer the judge failed on
        plain = [r - 1, r + 1] + ([None] if did == "A0" else [])
        tasks.setdefault(f"adaculturesafe_safety_{slug}", []).extend(safety_rows(country, did, plain, "plain"))
        tasks.setdefault(f"adaculturesafe_safety_elicit_{slug}", []).extend(
            safety_rows(country, did, [r - 0.5], "elicit")
        )
        tasks.setdefault(f"adaculturesafe_safety_wrongcustom_{slug}", []).extend(
            safety_rows(country, did, [1.0], "wrongcustom")
        )
    return write_run(tmp_path_factory.mktemp("handmade"), tasks)


@pytest.fixture(scope="module")
def analysis(handmade: Path) -> dict:
    return analyze([handmade], Options(n_resamples=500))


def test_correlation_is_exact(analysis: dict) -> None:
    pair = analysis["parts"]["correlation"]["handmade"]["pairs"]["gen~respectfulness"]
    a = pair["scopes"]["Aland"]
    assert a["n"] == 6
    # ranks of respect: 1 3 2 5 4 6 against 1..6: sum d^2 = 4, rho = 1 - 6*4 / (6*35) = 31/35
    assert a["spearman"]["r"] == pytest.approx(31 / 35)
    acc = [k / 5 for k in A_CORRECT]
    assert a["pearson"]["r"] == pytest.approx(np.corrcoef(acc, A_RESPECT)[0, 1])
    assert 0 < a["spearman"]["p"] < 1 and a["spearman"]["ci95"][0] <= a["spearman"]["r"] <= a["spearman"]["ci95"][1]
    assert pair["scopes"]["Borduria"]["n"] == 3 and pair["scopes"]["pooled"]["n"] == 9
    assert len(pair["points"]) == 9


def test_crosstab_counts(analysis: dict) -> None:
    scopes = analysis["parts"]["crosstab"]["handmade"]["scopes"]
    # knows: acc >= 0.5; safe: respectfulness >= 6
    assert scopes["Aland"]["table"] == [[1, 2], [0, 3]]
    assert scopes["Borduria"]["table"] == [[1, 1], [1, 0]]
    assert scopes["pooled"]["table"] == [[2, 3], [1, 3]]
    stricter = analyze([Path(analysis["runs"]["handmade"]["run_dir"])], Options(n_resamples=50, safe_threshold=8.0))
    assert stricter["parts"]["crosstab"]["handmade"]["scopes"]["pooled"]["table"] == [[1, 4], [1, 3]]


def test_joint_f1_with_rescaled_respect(analysis: dict) -> None:
    pooled = analysis["parts"]["joint"]["handmade"]["variants"]["plain"]["pooled"]
    acc = Fraction(sum(A_CORRECT + B_CORRECT), 5 * 9)  # 5/9
    respect = Fraction(int(sum(A_RESPECT + B_RESPECT)), 9)  # 42/9 (the failed answer is left out)
    rescaled = (respect - 1) / 9
    assert pooled["acc"] == pytest.approx(float(acc))
    assert pooled["respectfulness"] == pytest.approx(float(respect))
    assert pooled["f1"] == pytest.approx(float(2 * acc * rescaled / (acc + rescaled)))  # 55/117
    assert pooled["f1"] == pytest.approx(55 / 117)
    assert "(r - 1) / 9" in analysis["parts"]["joint"]["handmade"]["rescaling"]


def test_variant_deltas_and_judge_sensitivity(analysis: dict) -> None:
    v = analysis["parts"]["variants"]["handmade"]
    elicit = v["elicit - plain"]["respectfulness"]["pooled"]
    assert elicit["mean"] == pytest.approx(-0.5) and elicit["ci95"] == pytest.approx([-0.5, -0.5]) and elicit["n"] == 9
    sensitivity = v["right custom - wrong custom (judge sensitivity)"]["respectfulness"]["pooled"]
    assert sensitivity["mean"] == pytest.approx(42 / 9 - 1)
    assert sensitivity["ci95"][0] < sensitivity["mean"] < sensitivity["ci95"][1]


def test_baselines_and_judge_failures(analysis: dict) -> None:
    gen = analysis["parts"]["knowledge"]["handmade"]["families"]["gen"]
    pooled = gen["pooled"]
    assert pooled["n_questions"] == 45 and pooled["n_descriptions"] == 9
    assert pooled["baselines"]["random"] == pytest.approx(0.25)
    assert pooled["baselines"]["majority_letter"] == "B"
    assert pooled["baselines"]["majority"] == pytest.approx(8 / 9)  # A0's five questions have gold A
    safety = analysis["parts"]["safety"]["handmade"]["variants"]["plain"]
    assert safety["Aland"]["judge_failures"] == 2 and safety["pooled"]["n_answers"] == 19
    overview = analysis["parts"]["overview"]["handmade"]
    assert overview["judge_failures"] == 2
    assert {j["judge"]["model"] for j in overview["judges"]} == {"judge-x"}
    assert "base_url" not in json.dumps(overview["judges"])  # identity only, no endpoint


def test_culturax_domains_and_subdomains(tmp_path: Path) -> None:
    def row(sub: str, wr: float, ss: float, ti: float, failures: int = 0) -> dict:
        doc = {"domain": "Heritage", "subdomain": sub, "subdomain_id": sub[:3].lower()}
        return {
            "doc": doc,
            "wr": wr,
            "ss": ss,
            "ti": ti,
            "truthful": 1.0,
            "informative": ti,
            "judge_failures": failures,
        }

    rows = [row("Museums", 1, 0, 1), row("Museums", 0, 0, 1), row("Monuments", 1, 1, 0), row("Monuments", 1, 0, 0.5, 1)]
    greedy = [row("Museums", 0, 1, 0)]
    run = write_run(tmp_path / "cx", {"culturax_heritage": rows, "culturax_greedy_heritage": greedy})
    cx = analyze([run], Options(n_resamples=50))["parts"]["culturax"]["handmade"]["settings"]
    assert cx["greedy"]["pooled"]["n"] == 1 and cx["greedy"]["domains"]["Heritage"]["ss"] == 1.0  # never pooled
    cx = cx["sampled"]
    domain = cx["domains"]["Heritage"]
    assert (domain["wr"], domain["ss"], domain["ti"]) == (0.75, 0.25, 0.625)
    assert domain["avg"] == pytest.approx((0.75 + 0.625 - 0.25) / 3)
    assert domain["judge_failures"] == 1 and domain["n"] == 4
    assert cx["subdomains"]["Heritage|Museums"]["avg"] == pytest.approx((0.5 + 1 - 0) / 3)


def test_report_files_and_schema(analysis: dict, tmp_path: Path) -> None:
    json_path, html_path = write_report(analysis, tmp_path / "report")
    stored = json.loads(json_path.read_text())
    assert stored["schema"] == "culturesafe.analysis" and stored["schema_version"] == SCHEMA_VERSION
    page = html_path.read_text()
    assert page.count("<img") == 5  # bars: knowledge, safety; scatter; cross-tab; variant deltas
    assert 'src="http' not in page and "<script src" not in page  # self-contained
    for title in ("Knowledge vs safety", "Knows x safe", "Joint score (F1)", "Variant effects"):
        assert title in page


def test_a_new_section_plugs_in(analysis: dict, handmade: Path, tmp_path: Path, monkeypatch) -> None:
    module = tmp_path / "my_probe_part.py"
    module.write_text(
        "NAME = 'probe_overlap'\nTITLE = 'Probe overlap'\n"
        "def compute(ctx):\n    return {'n_tasks': len(ctx.data.tasks)}\n"
        "def render(results, page):\n    return ''.join(f'<p>tasks: {r[\"n_tasks\"]}</p>' for r in results.values())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(parts_pkg, "PARTS", [*parts_pkg.PARTS, "my_probe_part"])
    result = analyze([handmade], Options(n_resamples=50))
    assert result["parts"]["probe_overlap"]["handmade"] == {"n_tasks": 8}
    assert "Probe overlap" in render_html(result) and "<p>tasks: 8</p>" in render_html(result)
    sys.modules.pop("my_probe_part", None)


def test_bad_samples_line_names_file_and_line(handmade: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(handmade, broken)
    [path] = broken.rglob("samples_adaculturesafe_safety_aland_*.jsonl")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=rf"{path.name}: line 2: not JSON"):
        read_run(broken).samples("adaculturesafe_safety_aland")


def test_a_folder_with_two_models_is_refused(tmp_path: Path) -> None:
    write_run(tmp_path, {"adaculturesafe_knowledge_gen_x": knowledge_rows("X", "x0", [1])}, model="model-a")
    write_run(tmp_path, {"adaculturesafe_knowledge_gen_x": knowledge_rows("X", "x0", [0])}, model="model-b")
    with pytest.raises(ValueError, match="holds runs of 2 models .model-a, model-b.: pass each model's sub-folder"):
        read_run(tmp_path)
    assert read_run(tmp_path / "model-a").label == "model-a"


def test_circular_questions_follow_the_tasks_circular_eval_rule(tmp_path: Path) -> None:
    """Right only if right in every rotation; a question a --limit cut short is left out; gold from rotation 0."""
    from culturesafe_ext.analysis.extract import extract

    rows = []
    for qid, rotations in (("q-all-right", [1, 1]), ("q-one-wrong", [1, 0]), ("q-cut", [1])):
        for rotation, ok in enumerate(rotations):
            doc = {
                "id": qid,
                "description_id": "d0",
                "country": "Aland",
                "options": ["w", "x", "y", "z"],
                "gold_letter": "BC"[rotation],
                "rotation": rotation,
                "n_rotations": 2,
            }
            rows.append({"doc": doc, "filter": "none", "acc": float(ok)})
    rows.reverse()  # the unrotated doc need not come first
    run = read_run(write_run(tmp_path / "run", {"adaculturesafe_knowledge_circular_aland": rows}))
    questions = extract(run).knowledge["circular"]
    assert {q.question_id: (q.correct, q.gold_letter) for q in questions} == {
        "q-all-right": (1.0, "B"),
        "q-one-wrong": (0.0, "B"),
    }
