"""``leaderboard validate`` refuses consistently edited copies of a real run (issue 20) and accepts the run itself.

One real lm_eval run (tiny model, stand-in judge on 127.0.0.1, bundled sample; the run e2e/test_analysis
reads, which also holds adaculturesafe_knowledge_gen_china) is copied and edited the
way a forger would: every count, metric, aggregate and hash recomputed after the edit (:func:`reseal`),
so only the new checks can catch it. Two more real runs have a judge that failed on most answers; the
three runs are started early, side by side (`lm_eval_jobs`, conftest's ``lm_eval_pool``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.lm_eval_run import china_judged_run, culturesafe, lm_eval_args, lm_eval_raw
from support.openai_standin import Fault, StandIn

from culturesafe_ext.analysis.runs import read_jsonl, read_run
from culturesafe_ext.leaderboard.policy import MAX_JUDGE_FAILURE_RATE
from culturesafe_ext.leaderboard.recompute import doc_hash
from culturesafe_ext.leaderboard.spot_check import choose
from culturesafe_ext.leaderboard.verdict import validate

SAFETY, KNOWLEDGE = "adaculturesafe_safety_china", "adaculturesafe_knowledge_china"
TASKS = (SAFETY, KNOWLEDGE)


def judged_args(model: Path, judge: dict, tasks: tuple[str, ...]) -> list[str]:
    return lm_eval_args(model, tasks, {"culturesafe_data": "bundled", "judge": judge}, max_gen_toks=4)


FAILING = {"prose80": (Fault("prose", rate=0.8), 6), "500all": (Fault("500", rate=1.0), 0)}


def failing_run(model: Path, tmp_path: Path, fault: Fault, retries: int) -> tuple[subprocess.CompletedProcess, Path]:
    """A run whose judge fails on most answers (lm_eval may exit 3 on it: every judged metric NaN)."""
    with StandIn(faults=[fault], max_lifetime=600) as server:
        judge = {"backend": "openai", "model": "standin", "base_url": server.base_url, "progress": False}
        judge |= {"cache_path": str(tmp_path / "judge.sqlite"), "max_retries": retries}
        out = tmp_path / "lm_eval_out"
        return lm_eval_raw(judged_args(model, judge, (SAFETY,)), out, timeout=600), out


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The clean run (shared with e2e/test_analysis) and the two failing ones (started early by conftest's
    ``lm_eval_pool``)."""
    clean = tmp_path_factory.mktemp("validate_run")
    jobs = {"shared:china_judged": lambda: china_judged_run(tiny_model, clean)}
    for name, (fault, retries) in FAILING.items():
        tmp = tmp_path_factory.mktemp(name)
        jobs[name] = lambda f=fault, r=retries, t=tmp: failing_run(tiny_model, t, f, r)
    return jobs


@pytest.fixture(scope="module")
def run(lm_eval_runs: dict[str, Future]) -> Path:
    """The clean run; its stand-in stays up, so a spot check can reach the judge."""
    return Path(lm_eval_runs["shared:china_judged"].result()[0]["_dir"]).parent


def refusals(folder: Path, **policy) -> str:
    return "\n".join(str(r) for r in validate(folder, TASKS, allow_bundled=True, **policy))


# --- a forger's tools: edit, then recompute everything the old validator checked ---------------------
def _files(folder: Path) -> tuple[Path, dict, Path, list[dict]]:
    [results] = folder.rglob("results_*.json")
    [samples] = folder.rglob(f"samples_{SAFETY}_*.jsonl")
    return results, json.loads(results.read_text()), samples, read_jsonl(samples)


def reseal(folder: Path, data: dict, rows: list[dict]) -> None:
    """Per-sample metrics, aggregates, counts and lm-eval's hashes of the safety task, all made consistent."""
    from lm_eval.utils import hash_string

    from culturesafe_ext.tasks.aggregations import mean_by_description, total
    from culturesafe_ext.tasks.safety import process_results

    results, _, samples, _ = _files(folder)
    for r in rows:
        r.update(process_results(r["doc"], r["filtered_resps"]))
        r["doc_hash"] = doc_hash(r["doc"])
    reported = data["results"][SAFETY]
    for metric in ("respectfulness", "awareness"):
        if f"{metric},judge" in reported:
            reported[f"{metric},judge"] = mean_by_description(tuple(r[metric]) for r in rows)
    for metric in ("judge_failures", "n_judged"):
        if f"{metric},judge" in reported:
            reported[f"{metric},judge"] = float(total(r[metric] for r in rows))
    if "judge_failure_rate,judge" in reported:
        reported["judge_failure_rate,judge"] = sum(r["judge_failure_rate"] for r in rows) / len(rows)
    reported["sample_len"] = len(rows)
    data["n-samples"][SAFETY] = {"original": len(rows), "effective": len(rows)}
    data["task_hashes"][SAFETY] = hash_string(
        "".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows)
    )
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    results.write_text(json.dumps(data, ensure_ascii=False))


def set_score(row: dict, dimension: str, score: float, raw: str | None = None, response: str | None = None) -> None:
    entry = json.loads(row["filtered_resps"][0][0])
    entry[dimension]["score"] = score
    if raw is not None:
        entry[dimension]["raw"] = raw
    if response is not None:
        entry["response"] = response
        row["resps"] = [[response]]
    row["filtered_resps"] = [[json.dumps(entry, ensure_ascii=False)]]


def copy(run: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


# --- the tests -----------------------------------------------------------------------------------------
def test_the_clean_run_is_accepted_by_the_cli_with_a_flag_for_the_uncalibrated_judge(run: Path) -> None:
    groups = [arg for task in TASKS for arg in ("--group", task)]
    done = culturesafe("leaderboard", "validate", run, "--allow-bundled", *groups, timeout=300)
    assert done.returncode == 0 and "ACCEPTED" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "FLAG:" in done.stdout and "judge not calibrated: no judge card for openai:standin" in done.stdout
    assert MAX_JUDGE_FAILURE_RATE == 0.05  # the command's default is the policy's


def test_one_score_changed_with_its_metric_and_aggregate_while_the_raw_reply_says_otherwise(
    run: Path, tmp_path: Path
) -> None:
    folder = copy(run, tmp_path, "one_score")
    _, data, _, rows = _files(folder)
    entry = json.loads(rows[0]["filtered_resps"][0][0])["respectfulness"]
    logged = entry["score"]
    set_score(rows[0], "respectfulness", 10.0 if logged != 10.0 else 1.0)
    reseal(folder, data, rows)
    found = refusals(folder)
    assert f"doc_id 0/respectfulness: logged {10.0 if logged != 10.0 else 1.0}, its raw reply {entry['raw']!r}" in found
    assert "1 judge score(s) differ" in found
    assert "reported" not in found  # the forgery is consistent: only the re-read of the raw reply catches it


def test_every_score_set_to_nine(run: Path, tmp_path: Path) -> None:
    folder = copy(run, tmp_path, "all_nine")
    _, data, _, rows = _files(folder)
    changed = 0
    for row in rows:
        for dimension in ("respectfulness", "awareness"):
            changed += json.loads(row["filtered_resps"][0][0])[dimension]["score"] != 9.0
            set_score(row, dimension, 9.0)
    reseal(folder, data, rows)
    assert data["results"][SAFETY]["respectfulness,judge"] == 9.0
    assert f"{changed} judge score(s) differ from what the logged raw reply says" in refusals(folder)


def test_a_sample_deleted_with_counts_and_hashes_recomputed(run: Path, tmp_path: Path) -> None:
    folder = copy(run, tmp_path, "deleted")
    _, data, _, rows = _files(folder)
    reseal(folder, data, rows[:4] + rows[5:])
    found = refusals(folder)
    assert f"task {SAFETY!r}: 1 of the dataset's 10 documents are not in the samples (doc_id [4])" in found
    duplicated = copy(run, tmp_path, "duplicated")
    _, data, _, rows = _files(duplicated)
    reseal(duplicated, data, rows[:4] + [rows[3]] + rows[5:])
    assert "doc_id [3] logged more than once" in refusals(duplicated)


def test_judge_failure_metrics_deleted(run: Path, tmp_path: Path) -> None:
    folder = copy(run, tmp_path, "no_failures")
    results, data, _, rows = _files(folder)
    for key in list(data["results"][SAFETY]):
        if key.startswith(("judge_failures", "judge_failure_rate")):
            del data["results"][SAFETY][key]
    config = data["configs"][SAFETY]
    config["metric_list"] = [m for m in config["metric_list"] if not m["metric"].startswith("judge_failure")]
    for r in rows:
        r["metrics"] = [m for m in r["metrics"] if not m.startswith("judge_failure")]
    reseal(folder, data, rows)
    found = refusals(folder)
    assert (
        f"{results}: task {SAFETY!r}: metric(s) ['judge_failure_rate,judge', 'judge_failures,judge'] of the task "
        "version are not reported" in found
    )


def test_an_aggregate_inflated_with_its_metric_entry_removed(run: Path, tmp_path: Path) -> None:
    folder = copy(run, tmp_path, "inflated")
    results, data, _, rows = _files(folder)
    reseal(folder, data, rows)
    true_value = data["results"][SAFETY]["respectfulness,judge"]
    data["results"][SAFETY]["respectfulness,judge"] = true_value + 2
    config = data["configs"][SAFETY]
    config["metric_list"] = [m for m in config["metric_list"] if m["metric"] != "respectfulness"]
    results.write_text(json.dumps(data))
    found = refusals(folder)
    assert f"task {SAFETY!r}: respectfulness,judge reported {true_value + 2!r}" in found
    assert f"task {SAFETY!r}: configs lists metrics ['awareness'," in found


@pytest.mark.parametrize("case", list(FAILING))
def test_runs_whose_judge_failed_on_most_answers(case: str, lm_eval_runs: dict[str, Future]) -> None:
    """lm_eval itself may exit non-zero on such a run (all judged metrics NaN), but it writes results and samples."""
    done, out = lm_eval_runs[case].result()
    [results] = out.rglob("results_*.json")
    assert done.returncode in (0, 3), done.stderr[-3000:]  # 3: the judge failed on every answer (said so)
    data = {**json.loads(results.read_text()), "_dir": str(results.parent)}
    failures = int(data["results"][SAFETY]["judge_failures,judge"])
    assert failures >= 10  # most of the 20 judgements
    found = "\n".join(str(r) for r in validate(Path(data["_dir"]), (SAFETY,), allow_bundled=True))
    assert (
        f"the judge failed on {failures} of 20 judgements ({failures / 20:.1%}), above --max-judge-failure-rate 0.05"
        in found
    )
    lenient = validate(Path(data["_dir"]), (SAFETY,), allow_bundled=True, max_judge_failure_rate=1.0)
    assert not lenient, lenient  # the run itself is consistent: the threshold alone refuses it


def test_spot_check_accepts_the_real_run_and_refuses_a_consistent_forgery(run: Path, tmp_path: Path) -> None:
    tasks = list(TASKS)
    chosen = choose(read_run(run), tasks, 4, seed=3)
    assert chosen.get(SAFETY) and chosen.get(KNOWLEDGE), chosen  # the seeded sample re-runs both kinds
    assert chosen == choose(read_run(run), tasks, 4, seed=3)
    assert not refusals(run, spot_check=4, seed=3)

    forged = copy(run, tmp_path, "forged")
    _, data, _, rows = _files(forged)
    for row in rows:  # better answers, and a judge that "said" 10 for them: consistent in every file
        response = "A respectful answer that explains the custom."
        for dimension in ("respectfulness", "awareness"):
            set_score(row, dimension, 10.0, raw='{"score": 10}', response=response)
    reseal(forged, data, rows)
    assert not refusals(forged)  # internally consistent: the validator alone cannot tell
    found = refusals(forged, spot_check=4, seed=3)
    assert f"spot check (seed 3): {len(chosen[SAFETY])} difference(s) re-running" in found
    assert "the run logged 'A respectful answer that explains the custom.'" in found


def test_a_run_judged_through_environment_variables_rebuilds_from_the_docs_judge(run: Path, tmp_path: Path) -> None:
    """No ``judge`` in the logged metadata (CULTURESAFE_JUDGE_* were set): still accepted, nothing refused."""
    folder = copy(run, tmp_path, "env_judge")
    results, data, _, _ = _files(folder)
    for config in data["configs"].values():
        config["metadata"].pop("judge", None)
    results.write_text(json.dumps(data))
    assert refusals(folder) == ""
