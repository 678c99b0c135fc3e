"""Judge calibration round trip (issue 17 item 1) on a real lm_eval run: tiny model, stand-in judge.

sample -> ratings written here by hand (two raters in CSV, one through a Label Studio export) -> report,
whose figures are checked against scipy, scikit-learn and krippendorff called directly; then the card in
``culturesafe analyze report`` and ``culturesafe leaderboard validate``. Bad ratings files name file, line and field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr
from sklearn.metrics import cohen_kappa_score
from support.lm_eval_run import culturesafe, lm_eval_args, run_lm_eval
from support.openai_standin import StandIn

from culturesafe_ext.analysis.runs import read_samples

TASKS = ("adaculturesafe_safety_china", "adaculturesafe_safety_india")
N = 12
# Hand-written ratings, in the order of sample.json's answers: (respectfulness, awareness) per answer.
ANN = [(7, 3), (2, 2), (9, 6), (5, 5), (8, 4), (1, 1), (6, 7), (4, 2), (10, 8), (3, 3), (7, 6), (5, 4)]
BOB = [(8, 3), (3, 1), (9, 7), (4, 5), (8, 5), (2, 1), (6, 6), (5, 3), (9, 8), (3, 2), (6, 6), (5, 5)]
CARL = [(7, 4), (2, 2), (10, 6), (5, 4), (7, 4), (1, 2), (7, 7), (4, 2), (10, 9), (2, 3), (7, 5), (6, 4)]


def judged_run(model: Path, tmp: Path) -> Path:
    with StandIn(max_lifetime=600) as server:
        judge = {"backend": "openai", "model": "standin", "base_url": server.base_url, "progress": False}
        judge["cache_path"] = str(tmp / "judge.sqlite")
        args = lm_eval_args(model, TASKS, {"culturesafe_data": "bundled", "judge": judge}, max_gen_toks=4)
        return Path(run_lm_eval(args, tmp)["_dir"]).parent


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The module's one run (started early by conftest's ``lm_eval_pool``)."""
    tmp = tmp_path_factory.mktemp("calibrate_run")
    return {"run": lambda: judged_run(tiny_model, tmp)}


@pytest.fixture(scope="module")
def run(lm_eval_runs: dict) -> Path:
    return lm_eval_runs["run"].result()


@pytest.fixture(scope="module")
def cal(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cal") / "CAL"
    done = culturesafe("judge", "calibrate", "sample", run, "--n", N, "--out", out, "--seed", 1)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert f"sampled {N} of 20 judged answers" in done.stdout
    return out


def write_ratings(cal: Path, name: str, rater: str, scores: list[tuple[int, int]]) -> Path:
    rows = list(csv.DictReader((cal / "ratings.csv").open(encoding="utf-8")))
    order = [a["answer_id"] for a in json.loads((cal / "sample.json").read_text())["answers"]]
    for row in rows:
        pair = scores[order.index(row["answer_id"])]
        row["human_score"] = str(pair[0] if row["dimension"] == "respectfulness" else pair[1])
        row["rater"] = rater
    path = cal / name
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_labelstudio_export(cal: Path, rater_email: str, scores: list[tuple[int, int]]) -> Path:
    """Label Studio's JSON export of the imported tasks, one annotation each (its documented shape)."""
    tasks = json.loads((cal / "labelstudio_tasks.json").read_text())
    order = [a["answer_id"] for a in json.loads((cal / "sample.json").read_text())["answers"]]
    export = []
    for n, task in enumerate(tasks):
        respect, aware = scores[order.index(task["data"]["answer_id"])]
        result = [
            {"from_name": "human_respectfulness", "to_name": "answer", "type": "number", "value": {"number": respect}},
            {"from_name": "human_awareness", "to_name": "answer", "type": "number", "value": {"number": aware}},
        ]
        export.append(
            {
                "id": n + 1,
                "data": task["data"],
                "annotations": [{"completed_by": {"email": rater_email}, "result": result}],
            }
        )
    path = cal / "export.json"
    path.write_text(json.dumps(export))
    return path


def test_sample_is_seeded_stratified_and_hides_the_judge_score(run: Path, cal: Path, tmp_path: Path) -> None:
    sample = json.loads((cal / "sample.json").read_text())
    assert sample["n"] == N and sample["judge"]["model"] == "standin"
    logged = {
        (task, r["doc_id"]): json.loads(r["filtered_resps"][0][0])
        for task, rows in read_samples(run).items()
        for r in rows
    }
    for a in sample["answers"]:  # the judge scores are the logged ones
        entry = logged[(a["task"], a["doc_id"])]
        assert a["judge_scores"] == {d: entry[d]["score"] for d in ("respectfulness", "awareness")}
        assert a["answer"] == entry["response"]
    counts = {}
    for a in sample["answers"]:
        counts[(a["country"], a["bin"])] = counts.get((a["country"], a["bin"]), 0) + 1
    available = {}
    for (task, _), entry in logged.items():
        score = entry["respectfulness"]["score"]
        key = ("China" if task.endswith("china") else "India", "1-3" if score <= 3 else "4-7" if score <= 7 else "8-10")
        available[key] = available.get(key, 0) + 1
    assert {c for c, _ in counts} == {"China", "India"}
    for key, n in counts.items():  # round-robin: a stratum has fewer only when it ran out
        assert n == available[key] or n >= max(counts.values()) - 1, (counts, available)
    rows = list(csv.DictReader((cal / "ratings.csv").open(encoding="utf-8")))
    assert len(rows) == 2 * N and "judge" not in ",".join(rows[0]) and {r["human_score"] for r in rows} == {""}
    again = tmp_path / "again"
    assert culturesafe("judge", "calibrate", "sample", run, "--n", N, "--out", again, "--seed", 1).returncode == 0
    assert (again / "ratings.csv").read_text() == (cal / "ratings.csv").read_text()
    tasks = json.loads((cal / "labelstudio_tasks.json").read_text())
    assert len(tasks) == N and "human_respectfulness" in (cal / "labelstudio_config.xml").read_text()


def test_report_figures_equal_the_libraries_called_directly(cal: Path) -> None:
    files = [
        write_ratings(cal, "ann.csv", "ann", ANN),
        write_ratings(cal, "bob.csv", "bob", BOB),
        write_labelstudio_export(cal, "carl@example.org", CARL),
    ]
    done = culturesafe("judge", "calibrate", "report", cal, "--ratings", *files, "--resamples", 200)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    card = json.loads((cal / "judge_card.json").read_text())
    assert card["schema"] == "culturesafe.judge_card" and card["judge"]["model"] == "standin"
    assert card["rubric_version"] == "v1" and card["n"] == N and card["raters"] == ["ann", "bob", "carl@example.org"]
    answers = json.loads((cal / "sample.json").read_text())["answers"]
    for d, dimension in enumerate(("respectfulness", "awareness")):
        for scope in ("China", "India", "pooled"):
            idx = [i for i, a in enumerate(answers) if scope == "pooled" or a["country"] == scope]
            judge = np.array([answers[i]["judge_scores"][dimension] for i in idx], dtype=float)
            people = np.array([[ANN[i][d], BOB[i][d], CARL[i][d]] for i in idx], dtype=float)
            human = people.mean(axis=1)
            jr, hr = np.floor(judge + 0.5).astype(int), np.floor(human + 0.5).astype(int)
            expected = {
                "spearman": spearmanr(judge, human).statistic,
                "kendall_tau_b": kendalltau(judge, human, variant="b").statistic,
                "qw_kappa": cohen_kappa_score(jr, hr, weights="quadratic", labels=list(range(1, 11))),
                "krippendorff_alpha": krippendorff.alpha(
                    reliability_data=[judge, human], level_of_measurement="interval"
                ),
                "mae": np.abs(judge - human).mean(),
                "exact": (jr == hr).mean(),
                "within_1": (np.abs(jr - hr) <= 1).mean(),
            }
            figures = card["figures"][dimension][scope]
            for metric, value in expected.items():
                assert figures[metric]["value"] == pytest.approx(value, abs=1e-12), (dimension, scope, metric)
                assert figures[metric]["n"] == len(idx)
                low, high = figures[metric]["ci95"]
                assert low <= high
            inter = krippendorff.alpha(reliability_data=people.T, level_of_measurement="interval")
            assert card["inter_rater_alpha"][dimension][scope]["value"] == pytest.approx(inter, abs=1e-12)
    # the seeded bootstrap gives the same CIs again
    culturesafe("judge", "calibrate", "report", cal, "--ratings", *files, "--resamples", 200)
    assert json.loads((cal / "judge_card.json").read_text())["figures"] == card["figures"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[1].update(human_score="11"), "bad.csv: line 3: field 'human_score': '11' is outside 1-10"),
        (
            lambda rows: rows[0].update(answer_id="a9999"),
            "bad.csv: line 2: field 'answer_id': unknown answer id 'a9999'",
        ),
        (
            lambda rows: rows.append(dict(rows[0])),
            f"bad.csv: line {2 * N + 2}: field 'rater': a second respectfulness score from 'ann' for a0000 "
            "(first: bad.csv: line 2)",
        ),
    ],
    ids=["score_outside_1_10", "unknown_answer_id", "duplicate_rater_row"],
)
def test_bad_ratings_name_file_line_and_field(cal: Path, edit, message: str) -> None:
    good = write_ratings(cal, "good.csv", "ann", ANN)
    keep = ("answer_id", "dimension", "human_score", "rater")  # answers may span lines: keep line numbers plain
    rows = [{k: r[k] for k in keep} for r in csv.DictReader(good.open(encoding="utf-8"))]
    rows.sort(key=lambda r: (r["answer_id"], r["dimension"] != "respectfulness"))
    edit(rows)
    bad = cal / "bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = culturesafe("judge", "calibrate", "report", cal, "--ratings", bad, "--resamples", 10)
    assert done.returncode == 1 and message in done.stderr, done.stdout + done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_the_card_in_analyze_and_validate(run: Path, cal: Path, tmp_path: Path) -> None:
    if not (cal / "judge_card.json").exists():
        test_report_figures_equal_the_libraries_called_directly(cal)
    card_path = cal / "judge_card.json"
    card = json.loads(card_path.read_text())
    out = tmp_path / "report"
    done = culturesafe("analyze", "report", run, "--out", out, "--resamples", 50, "--judge-card", card_path)
    assert done.returncode == 0, done.stderr[-3000:]
    alpha = card["figures"]["respectfulness"]["pooled"]["krippendorff_alpha"]["value"]
    assert "judge calibrated against people (judge_card.json" in done.stdout
    assert f"respectfulness alpha {alpha:.3f}" in done.stdout
    html = (out / "report.html").read_text()
    assert html.count("judge calibrated against people") == 2  # runs overview and beside the safety scores
    plain = culturesafe("analyze", "report", run, "--out", tmp_path / "plain", "--resamples", 50)
    assert "judge not calibrated" in plain.stdout

    groups = [arg for task in TASKS for arg in ("--group", task)]
    base = ["leaderboard", "validate", run, "--allow-bundled", *groups, "--judge-card", card_path]
    lowest = min(card["figures"][d]["pooled"]["krippendorff_alpha"]["value"] for d in card["figures"])
    ok = culturesafe(*base, "--min-judge-alpha", lowest - 0.01)
    assert ok.returncode == 0 and "ACCEPTED" in ok.stdout and "judge not calibrated" not in ok.stdout, ok.stdout
    refused = culturesafe(*base, "--min-judge-alpha", lowest + 0.01)
    assert refused.returncode == 1
    assert "krippendorff_alpha (judge vs people) for" in refused.stdout
    assert f"below --min-judge-alpha {lowest + 0.01:g}" in refused.stdout
