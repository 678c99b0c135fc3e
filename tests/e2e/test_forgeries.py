"""Issue 28's forgeries of a submission, each made with the installed code the way a careful forger would
(every metric, aggregate, count and hash recomputed: :mod:`support.forger`), each refused by the real CLI
``culturesafe leaderboard validate`` with the file, the document and the reason.

Runs: the shared judged China run (one judge), a run judged by a 2-judge panel, and two runs of the knowledge
task on local copies of the bundled sample (a 2-question subset and a complete copy), all with revision strings.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.dataset_copies import subset_copy
from support.forger import copy, edit_entry, files, reseal, set_score
from support.lm_eval_run import china_judged_run, culturesafe, lm_eval_args, run_lm_eval
from support.openai_standin import StandIn

from culturesafe_ext.data import loader

SAFETY, KNOWLEDGE = "adaculturesafe_safety_china", "adaculturesafe_knowledge_china"
RELEASED = loader.ADACULTURESAFE.bundled  # stands in for the released dataset: a folder `culturesafe build` wrote


def panel_run(model: Path, tmp: Path) -> dict:
    with StandIn(max_lifetime=600) as server:
        member = {"backend": "openai", "base_url": server.base_url}
        judge = {
            "judges": [{**member, "model": "standin"}, {**member, "model": "standin-b"}],
            "panel_aggregate": "mean",
            "cache_path": str(tmp / "judge.sqlite"),
            "progress": False,
        }
        metadata = {"culturesafe_data": "bundled", "judge": judge}
        return run_lm_eval(lm_eval_args(model, (SAFETY,), metadata, max_gen_toks=4), tmp)


def copy_run(model: Path, tmp: Path, keep: int | None) -> dict:
    """The knowledge task on a local copy of the sample (``keep`` documents of its China config; None: all)."""
    data = tmp / "data"
    if keep is None:
        shutil.copytree(RELEASED, data)
    else:
        subset_copy(data, {"knowledge_china": keep})
    metadata = {"culturesafe_data": str(data), "culturesafe_revision": "v1.0"}
    return run_lm_eval(lm_eval_args(model, (KNOWLEDGE,), metadata), tmp)


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    clean, panel, subset, full = (tmp_path_factory.mktemp(n) for n in ("judged", "panel", "subset", "full_copy"))
    return {
        "shared:china_judged": lambda: china_judged_run(tiny_model, clean),
        "panel": lambda: panel_run(tiny_model, panel),
        "subset": lambda: copy_run(tiny_model, subset, 2),
        "full_copy": lambda: copy_run(tiny_model, full, None),
    }


def _dir(result: dict) -> Path:
    return Path(result["_dir"])


@pytest.fixture(scope="module")
def judged(lm_eval_runs: dict[str, Future]) -> Path:
    return _dir(lm_eval_runs["shared:china_judged"].result()[0]).parent


def validate_cli(folder: Path, *args: str, group: str = SAFETY) -> tuple[int, str]:
    done = culturesafe("leaderboard", "validate", folder, "--group", group, *args, timeout=300)
    return done.returncode, done.stdout + done.stderr[-3000:]


def test_a_panel_score_edited_to_10_with_each_judges_verdict_left_is_refused(
    lm_eval_runs: dict[str, Future], tmp_path: Path
) -> None:
    run = _dir(lm_eval_runs["panel"].result())
    status, out = validate_cli(run, "--allow-bundled")
    assert status == 0 and "ACCEPTED" in out, out  # the honest panel run
    folder = copy(run, tmp_path, "panel_forged")
    _, data, samples, rows = files(folder)
    own = json.loads(rows[0]["filtered_resps"][0][0])["respectfulness"]["judges"]

    changed = sum(
        json.loads(row["filtered_resps"][0][0])[d]["score"] != 10.0
        for row in rows
        for d in ("respectfulness", "awareness")
    )

    def ten(entry: dict) -> None:
        for dimension in ("respectfulness", "awareness"):
            entry[dimension]["score"] = 10.0

    for row in rows:
        edit_entry(row, ten)
    reseal(folder, data, rows)
    status, out = validate_cli(folder, "--allow-bundled")
    assert status == 1 and "REFUSED" in out, out
    mean = sum(j["score"] for j in own) / len(own)
    assert (
        f"{samples}: task {SAFETY!r}: {changed} judge score(s) differ from what the logged raw reply says under the "
        f"verdict rules, e.g. doc_id 0/respectfulness (the panel): logged 10.0, the mean of its judges' re-read "
        f"verdicts {[j['score'] for j in own]} is {mean}"
    ) in out, out


def test_judge_settings_deleted_from_the_docs_with_every_score_10_and_no_raw_replies_is_refused(
    judged: Path, tmp_path: Path
) -> None:
    folder = copy(judged, tmp_path, "no_settings")
    _, data, samples, rows = files(folder)
    for row in rows:
        del row["doc"]["judge_settings"]
        for dimension in ("respectfulness", "awareness"):
            set_score(row, dimension, 10.0, raw="")
            edit_entry(row, lambda e, d=dimension: e[d].update(raw=None))
    reseal(folder, data, rows)
    status, out = validate_cli(folder, "--allow-bundled")
    assert status == 1, out
    assert f"{samples}: task {SAFETY!r}: doc_id 0: no judge_settings logged in the doc" in out
    assert f"{samples}: task {SAFETY!r}: 10 docs lack judge_settings" in out


def test_the_docs_naming_another_judge_than_the_logged_metadata_is_refused(judged: Path, tmp_path: Path) -> None:
    folder = copy(judged, tmp_path, "other_judge")
    _, data, samples, rows = files(folder)
    for row in rows:
        settings = json.loads(row["doc"]["judge_settings"])
        row["doc"]["judge_settings"] = json.dumps({**settings, "model": "gpt-4o", "temperature": 0.7}, sort_keys=True)
    reseal(folder, data, rows)
    status, out = validate_cli(folder, "--allow-bundled")
    assert status == 1, out
    assert f"{samples}: task {SAFETY!r}: doc_id 0: judge_settings names the judge" in out
    assert "'model': 'gpt-4o'" in out and "the run's logged metadata (in results_" in out


@pytest.mark.parametrize(
    "form",
    [
        {"error": "HTTP 500"},
        {"failure": "request_error"},
        {"score": math.nan},
        {"score": None},
    ],
    ids=["error-field", "failure-kind", "nan", "null"],
)
def test_failed_judgements_in_any_logged_form_are_counted(form: dict, judged: Path, tmp_path: Path) -> None:
    """Two of the twenty judgements marked failed (10%, above the default 5%): counted, whatever the form."""
    folder = copy(judged, tmp_path, "failed")
    _, data, samples, rows = files(folder)
    for row in rows[:2]:
        edit_entry(row, lambda e: e["respectfulness"].update(form))
    reseal(folder, data, rows)
    status, out = validate_cli(folder, "--allow-bundled")
    assert status == 1, out
    assert (
        f"task {SAFETY!r}: the judge failed on 2 of 20 judgements (10.0%), above --max-judge-failure-rate 0.05" in out
    )


def test_a_run_on_a_two_question_copy_is_refused_whatever_revision_it_names(lm_eval_runs: dict[str, Future]) -> None:
    result = lm_eval_runs["subset"].result()
    run = _dir(result)
    assert result["n-samples"][KNOWLEDGE]["effective"] == 2
    status, out = validate_cli(run, "--reference-data", str(RELEASED), group=KNOWLEDGE)
    assert status == 1, out
    [results] = run.glob("results_*.json")
    assert (
        f"{results}: task {KNOWLEDGE!r}: the data it ran on (culturesafe_data={str(run.parent.parent / 'data')!r}, "
        "culturesafe_revision='v1.0', config 'knowledge_china') is not the released dataset by content "
        "(test: 2 docs sha256"
    ) in out, out
    assert f"the card of {RELEASED} publishes test: 10 docs sha256" in out
    # without a reference the released card is the Hub dataset's: unreachable here, so nothing is certified
    status, out = validate_cli(run, group=KNOWLEDGE)
    assert status == 1 and "no released dataset card to check the data against" in out, out


def test_a_run_on_a_complete_copy_is_accepted(lm_eval_runs: dict[str, Future]) -> None:
    run = _dir(lm_eval_runs["full_copy"].result())
    status, out = validate_cli(run, "--reference-data", str(RELEASED), group=KNOWLEDGE)
    assert status == 0 and "ACCEPTED" in out, out


def test_a_submission_with_a_symlink_out_of_it_or_a_fifo_is_refused_unread(judged: Path, tmp_path: Path) -> None:
    folder = copy(judged, tmp_path, "links")
    _, _, samples, _ = files(folder)
    outside = tmp_path / "elsewhere.jsonl"
    samples.rename(outside)
    samples.symlink_to(outside)
    os.mkfifo(folder / "pipe")
    status, out = validate_cli(folder, "--allow-bundled")
    assert status == 1, out
    assert f"{samples}: a symbolic link to {str(outside)!r}: a submission holds only regular files" in out
    assert f"{folder / 'pipe'}: a fifo: a submission holds only regular files" in out
