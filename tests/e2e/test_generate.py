"""``culturesafe generate`` end to end (stand-in generations -> review -> Hub layout -> lm_eval), and a killed
``culturesafe generate`` process that resumes without repeating a call."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import datasets
from builders.test_generate import REQUESTS_FULL_RUN, SENTINEL, cache_rows, generate_args, write_descriptions
from support.lm_eval_run import OFFLINE_ENV, lm_eval_args, run_lm_eval
from support.openai_standin import StandIn
from support.scripted_generator import respond

from culturesafe_ext.cli import main


def test_generate_review_publish_and_evaluate(tmp_path: Path, tiny_model: Path, capsys, monkeypatch) -> None:
    descriptions = write_descriptions(tmp_path)
    out, cache = tmp_path / "thai", tmp_path / "cache.sqlite"
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", SENTINEL)
    with StandIn(responder=respond) as server:
        assert main(generate_args(server, descriptions, out, cache)) == 0
        assert server.n_requests == REQUESTS_FULL_RUN
        assert set(server.authorizations) == {f"Bearer {SENTINEL}"}  # the key is sent, from the environment only
        server.reset()
        assert main(generate_args(server, descriptions, out, cache)) == 0  # a re-run is served by the cache
        assert server.n_requests == 0
    work = tmp_path / "thai.work"
    report = json.loads((work / "generation_report.json").read_text())
    stats = report["stats"]
    assert stats["requests"] == REQUESTS_FULL_RUN and stats["cached"] == REQUESTS_FULL_RUN and stats["sent"] == 0
    assert (stats["complete"], stats["incomplete"], stats["unparseable_replies"]) == (9, 1, 1)

    # BROKEN: never valid, reported with each attempt's raw reply and problems.
    [broken] = report["incomplete_tasks"]
    assert broken["key"] == "t5/knowledge" and broken["got"] == 0 and len(broken["attempts"]) == 3
    assert all("options.D: same as option A" in " ".join(a["problems"]) for a in broken["attempts"])
    assert all(a["raw"] for a in broken["attempts"])
    # FLAKY: the unparseable reply and the half-invalid one are listed; the task still completed.
    flaky = {(r["key"], r["attempt"]) for r in report["invalid_replies"]}
    assert {("t4/knowledge", 0), ("t4/safety", 0)} <= flaky

    # DUPOF: t3's items are removed, each with its twin from t1 and the distance.
    removed = report["removed_near_duplicates"]
    assert len(removed) == 10
    assert {r["id"].split("/")[1] for r in removed} == {"t3"}
    assert {r["twin_id"].split("/")[1] for r in removed} == {"t1"}
    assert all(r["distance"] <= 10 and r["text"] == r["twin_text"] for r in removed)
    assert report["candidates"] == {"knowledge": 15, "safety": 20}
    gold = report["gold_letters"]  # the scripted model always answers B; balancing spreads it
    assert sum(gold.values()) == 15 and max(gold.values()) - min(gold.values()) <= 1 and len(gold) == 4

    # Review: the exported CSV, filled in: reject one, edit one, leave one unreviewed, accept the rest.
    review_csv = work / "review" / "review.csv"
    rows = list(csv.DictReader(review_csv.open(encoding="utf-8")))
    assert len(rows) == 35 and {r["kind"] for r in rows} == {"knowledge", "safety"}
    tasks = json.loads((work / "review" / "labelstudio_tasks.json").read_text())
    assert len(tasks) == 35 and all(set(t) == {"data"} and t["data"]["id"] for t in tasks)
    for n, row in enumerate(rows):
        row["decision"] = "accept"
        if n == 0:
            row["decision"], row["question"] = "edit", "Which gesture greets elders in Thailand?"
        elif n == 1:
            row["decision"] = "reject"
        elif n == 2:
            row["decision"] = ""
    decisions = tmp_path / "decisions.csv"
    with decisions.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert (
        main(["generate", "review-import", "--out", str(out), "--decisions", str(decisions), "--push", "me/thai"]) == 0
    )
    printed = capsys.readouterr().out
    assert "would upload (dry run" in printed and "README.md" in printed
    assert not (out / "candidates.jsonl").exists()  # only the dataset is in the pushed folder

    build = json.loads((out / "build_report.json").read_text())
    assert build["review"] == {
        "candidates": 35,
        "reviewed": 34,
        "accepted": 32,
        "edited": 1,
        "rejected": 1,
        "unreviewed": 1,
    }
    knowledge = datasets.load_dataset(str(out), "knowledge_thailand", split="test")
    safety = datasets.load_dataset(str(out), "safety", split="test")
    assert len(knowledge) == 13 and len(safety) == 20
    assert knowledge[0]["question"] == "Which gesture greets elders in Thailand?"
    assert knowledge.features == datasets.load_dataset(str(out), "knowledge", split="test").features
    assert knowledge[0]["description_id"] == "THA/t1" and knowledge[0]["id"].startswith("THA/t1/k")
    assert all(r["gold_letter"] == "ABCD"[r["gold_index"]] for r in knowledge)
    card = (out / "README.md").read_text()
    assert "34 reviewed: 32 accepted, 1 edited (kept), 1 rejected; 1 not reviewed" in card
    assert "10 items removed" in card and "Distribution over the 13 published MCQs" in card

    written = [p for folder in (out, tmp_path / "thai.work") for p in folder.rglob("*") if p.is_file()]
    assert written and not [p for p in written if SENTINEL.encode() in p.read_bytes()]

    # The published folder is what the tasks read.
    metadata = {"culturesafe_data": str(out)}
    run = run_lm_eval(lm_eval_args(tiny_model, "adaculturesafe_knowledge_thailand", metadata), tmp_path)
    [samples] = Path(run["_dir"]).glob("samples_adaculturesafe_knowledge_thailand_*.jsonl")
    logged = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(logged) == 13 and {s["doc"]["id"] for s in logged} == set(knowledge["id"])
    assert 0.0 <= run["results"]["adaculturesafe_knowledge_thailand"]["acc,none"] <= 1.0


def test_a_killed_run_resumes_without_repeating_a_call(tmp_path: Path) -> None:
    descriptions = write_descriptions(tmp_path)
    out, cache = tmp_path / "thai", tmp_path / "cache.sqlite"
    command = [str(Path(sys.executable).parent / "culturesafe")]
    env = {**os.environ, **OFFLINE_ENV}
    with StandIn(responder=respond, latency=0.25, max_lifetime=1200) as server:
        args = generate_args(server, descriptions, out, cache, "--concurrency", "1")
        process = subprocess.Popen(command + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300  # generous: start-up is slow on a loaded machine
        while server.stats()["n_answered"] < 4 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        process.kill()
        process.wait(10)
        assert process.returncode != 0, "the run finished before it could be killed"
        first = server.n_requests
        cached = cache_rows(cache)
        assert 1 <= cached < REQUESTS_FULL_RUN and first - cached <= 2  # at most the replies in flight are lost
        assert not (tmp_path / "thai.work" / "candidates.jsonl").exists()
        server.reset()
        done = subprocess.run(command + args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert server.n_requests == REQUESTS_FULL_RUN - cached  # nothing answered before the kill is asked again
        assert server.stats()["repeated"] == 0
    report = json.loads((tmp_path / "thai.work" / "generation_report.json").read_text())
    assert report["stats"]["cached"] == cached and report["candidates"] == {"knowledge": 15, "safety": 20}
