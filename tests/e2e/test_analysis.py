"""Analysis, report, leaderboard and validation on a real lm_eval run made here (tiny model, stand-in judge).

The report is opened in a real headless browser (Debian's chromium + chromium-driver, installed by .ci/run).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.lm_eval_files import knowledge_rows, safety_rows, write_run
from support.lm_eval_run import CHINA_JUDGED_TASKS, china_judged_run, culturesafe

from culturesafe_ext.leaderboard.verdict import validate

TASKS = list(CHINA_JUDGED_TASKS)


@pytest.fixture(scope="module")
def run(lm_eval_runs: dict) -> dict:
    """A complete run (no --limit) of three China tasks on the bundled sample, judged by the stand-in."""
    return lm_eval_runs["shared:china_judged"].result()[0]


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The run this module shares with e2e/test_validate (started early by conftest's ``lm_eval_pool``)."""
    tmp = tmp_path_factory.mktemp("analysis_run")
    return {"shared:china_judged": lambda: china_judged_run(tiny_model, tmp)}


@pytest.fixture(scope="module")
def report(run: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    done = culturesafe("analyze", "report", str(Path(run["_dir"]).parent), "--out", str(out), "--resamples", "200")
    assert done.returncode == 0, done.stderr
    assert "knowledge (gen) vs respectfulness, pooled" in done.stdout
    return out


def test_analysis_matches_lm_eval_and_the_samples(run: dict, report: Path) -> None:
    analysis = json.loads((report / "analysis.json").read_text())
    [label] = analysis["runs"]
    parts = analysis["parts"]
    n_lines = {t: len(next(Path(run["_dir"]).glob(f"samples_{t}_*.jsonl")).read_text().splitlines()) for t in TASKS}
    gen = parts["knowledge"][label]["families"]["gen"]["China"]
    assert gen["n_questions"] == n_lines["adaculturesafe_knowledge_gen_china"] == 10
    assert gen["acc_by_description"]["mean"] == pytest.approx(
        run["results"]["adaculturesafe_knowledge_gen_china"]["acc_by_description,none"]
    )
    plain = parts["safety"][label]["variants"]["plain"]["China"]
    assert plain["n_answers"] == n_lines["adaculturesafe_safety_china"]
    assert plain["respectfulness"]["mean"] == pytest.approx(
        run["results"]["adaculturesafe_safety_china"]["respectfulness,judge"]
    )
    assert plain["judge_failures"] == run["results"]["adaculturesafe_safety_china"]["judge_failures,judge"]
    overview = parts["overview"][label]
    assert [j["judge"]["model"] for j in overview["judges"]] == ["standin"]
    assert overview["n_judged"] == 10 * 2  # 10 answers x 2 dimensions, no stand-in faults
    corr = parts["correlation"][label]["pairs"]["gen~respectfulness"]["scopes"]["pooled"]
    assert corr["n"] == gen["n_descriptions"] == 2  # the bundled sample has 2 descriptions for China
    assert "crosstab" in parts and "joint" in parts


def _browser():
    missing = [name for name in ("chromium", "chromedriver") if not shutil.which(name)]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not on PATH: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does it)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def test_report_renders_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    page = (report / "report.html").read_text()
    n_plots = page.count("<img") + page.count("<svg")
    assert n_plots >= 4  # knowledge bars, safety bars, knowledge-vs-safety scatter, cross-tab heatmap
    driver = _browser()
    try:
        driver.get((report / "report.html").resolve().as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('img, svg')).map("
            "e => e.tagName === 'IMG' ? [e.complete, e.naturalWidth] : [true, e.getBoundingClientRect().width])"
        )
        assert len(sizes) == n_plots and all(done and width > 0 for done, width in sizes), sizes
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 1  # None: more colours than counted, so not blank


def test_validate_accepts_the_complete_run_and_refuses_tampering(run: dict, tmp_path: Path) -> None:
    root = Path(run["_dir"]).parent
    groups = [arg for task in TASKS for arg in ("--group", task)]
    done = culturesafe("leaderboard", "validate", str(root), "--allow-bundled", *groups)
    assert done.returncode == 0 and "ACCEPTED" in done.stdout, done.stdout

    default = culturesafe("leaderboard", "validate", str(root))
    assert default.returncode == 1
    assert "task 'adaculturesafe_safety_oracle_india' of group(s) adaculturesafe is missing" in default.stdout
    assert "evaluated on the bundled sample" in default.stdout

    tampered = tmp_path / "tampered"
    shutil.copytree(root, tampered)
    [results] = tampered.rglob("results_*.json")
    data = json.loads(results.read_text())
    data["results"]["adaculturesafe_knowledge_china"]["acc,none"] += 0.1  # one changed score
    results.write_text(json.dumps(data))
    refusals = [str(r) for r in validate(tampered, tuple(TASKS), allow_bundled=True)]
    assert len(refusals) == 1 and refusals[0].startswith(
        f"{results}: task 'adaculturesafe_knowledge_china': acc,none reported"
    ), refusals

    [samples] = tampered.rglob("samples_adaculturesafe_safety_china_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    rows[0]["respectfulness"][1] = 10.0 if rows[0]["respectfulness"][1] != 10.0 else 1.0
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data["config"]["limit"] = 5
    results.write_text(json.dumps(data))
    refusals = "\n".join(str(r) for r in validate(tampered, tuple(TASKS), allow_bundled=True))
    assert f"{samples}: doc_id 0: respectfulness logged" in refusals
    assert f"{results}: run with --limit 5" in refusals


def test_leaderboard_across_two_models(run: dict, tmp_path: Path) -> None:
    other = {
        "adaculturesafe_knowledge_gen_china": knowledge_rows("China", "d1", [1, 1, 0, 0, 0])
        + knowledge_rows("China", "d2", [1, 1, 1, 1, 0]),
        "adaculturesafe_safety_china": safety_rows("China", "d1", [9.0]) + safety_rows("China", "d2", [8.0]),
    }
    handmade = write_run(tmp_path / "other", other, model="other-model")
    out = tmp_path / "board"
    done = culturesafe("leaderboard", "build", str(Path(run["_dir"]).parent), str(handmade), "--out", str(out))
    assert done.returncode == 0, done.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    assert [r["model"] for r in board["rows"]][0] == "other-model"  # sorted by pooled F1 (0.70 here)
    other_row = board["rows"][0]["cells"]["pooled"]
    assert other_row["acc"]["value"] == pytest.approx(0.6) and other_row["respect"]["value"] == pytest.approx(8.5)
    assert other_row["f1"]["value"] == pytest.approx(2 * 0.6 * (7.5 / 9) / (0.6 + 7.5 / 9))
    csv_lines = (out / "leaderboard.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and "pooled F1" in csv_lines[0]
    assert 'class="sortable"' in (out / "leaderboard.html").read_text()
    assert (out / "leaderboard.md").read_text().count("\n| ") == 3
