"""``culturesafe generate``: stand-in generations (valid, invalid, duplicate) -> review -> Hub layout -> lm_eval."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import datasets
from support.lm_eval_run import OFFLINE_ENV, lm_eval_args, run_lm_eval
from support.openai_standin import StandIn
from support.scripted_generator import respond

from culturesafe_ext.cli import main

DESCRIPTIONS = [
    ("t1", "Alpha GOOD: in Thailand people greet elders with a wai, palms pressed together."),
    ("t2", "Bravo GOOD: shoes are taken off before entering a Thai home or temple hall."),
    ("t3", "Charlie DUPOF:Alpha the head is the most sacred part of the body in Thailand."),
    ("t4", "Delta FLAKY: monks must not be touched by women, who hand offerings via a cloth."),
    ("t5", "Echo BROKEN: feet are the lowest part of the body and never point at people."),
]
SENTINEL = "sk-generate-SENTINEL-51d2"
REQUESTS_FULL_RUN = 14  # round 0: 10 tasks; round 1: t4 knowledge + safety, t5 knowledge; round 2: t5 knowledge


def write_descriptions(folder: Path) -> Path:
    path = folder / "descriptions.jsonl"
    rows = [
        {"id": i, "country": "Thailand", "location": "Bangkok", "source": "test notes", "description": d}
        for i, d in DESCRIPTIONS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def generate_args(server: StandIn, descriptions: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "generate",
        "adaculturesafe",
        "--descriptions",
        str(descriptions),
        "--out",
        str(out),
        "--generator",
        "openai:standin",
        "--base-url",
        server.base_url,
        "--cache-path",
        str(cache),
        "--no-progress",
        *extra,
    ]


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


def cache_rows(cache: Path) -> int:
    """Replies committed to the judge cache (its sqlite ``replies`` table)."""
    if not cache.exists():
        return 0
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT count(*) FROM replies").fetchone()[0]


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


def test_hf_backend_with_a_tiny_model_reports_its_invalid_output(tmp_path: Path, tiny_model: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "id,country,location,source,description\nj1,Japan,Kyoto,notes,Bowing is the usual greeting in Japan.\n",
        encoding="utf-8",
    )
    out = tmp_path / "jp"
    args = ["generate", "adaculturesafe", "--descriptions", str(path), "--out", str(out), "--generator"]
    args += [f"hf:{tiny_model}", "--cache-path", str(tmp_path / "c.sqlite"), "--max-attempts", "2"]
    args += ["--max-tokens", "12", "--n-knowledge", "1", "--n-safety", "1", "--no-progress"]
    assert main(args) == 0
    report = json.loads((tmp_path / "jp.work" / "generation_report.json").read_text())
    assert report["generator"]["backend"] == "hf" and report["stats"]["sent"] == 4
    assert report["stats"]["incomplete"] == 2 and len(report["incomplete_tasks"]) == 2
    assert report["stats"]["truncated_replies"] == 4 and report["stats"]["unparseable_replies"] == 0
    for task in report["incomplete_tasks"]:
        # 12 tokens and no end token: truncated replies, counted as such (issue 16), never parsed
        assert [a["problems"][0][:42] for a in task["attempts"]] == ["truncated: the reply hit the token limit ("] * 2
        assert all(isinstance(a["raw"], str) for a in task["attempts"])
    decisions = tmp_path / "none.csv"
    decisions.write_text("id,decision\n", encoding="utf-8")
    assert main(["generate", "review-import", "--out", str(out), "--decisions", str(decisions)]) == 0
    build = json.loads((out / "build_report.json").read_text())
    assert build["rows"] == {"knowledge": 0, "safety": 0} and "knowledge_japan" in build["empty_configs_not_written"]
    card = (out / "README.md").read_text()
    assert "2 short of items after the last attempt" in card and "0 candidates" in card


def test_bad_inputs_name_file_line_and_field(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,country,location,source,description\n"
        "a1,Japan,Kyoto,notes,Fine.\n"
        "a2,Japan,,notes,No location.\n"
        "a1,Japan,Osaka,notes,Same id.\n"
        "a3,Atlantis,Sunk,notes,No such country.\n",
        encoding="utf-8",
    )
    args = ["generate", "adaculturesafe", "--descriptions", str(path), "--out", str(tmp_path / "o")]
    assert main([*args, "--generator", "openai:x", "--base-url", "http://127.0.0.1:9/v1"]) == 1
    err = capsys.readouterr().err
    assert "bad.csv: line 3: field 'location': empty" in err
    assert "bad.csv: line 4: field 'id': duplicate id 'a1' (first on line 2)" in err
    assert "bad.csv: line 5: field 'country': no ISO 3166 country named 'Atlantis'" in err
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"id": "x", "country": "Japan"}\n{not json\n', encoding="utf-8")
    assert main([*args[:3], str(jsonl), *args[4:], "--generator", "openai:x", "--base-url", "http://h/v1"]) == 1
    assert "bad.jsonl: line 2: field '-': invalid JSON" in capsys.readouterr().err


def test_culturax_references_dedup_first_and_label_studio_round_trip(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        {
            "id": "q1",
            "question": "How do families in Oaxaca honour the dead in early November?",
            "subdomain": "rituals",
        },
        {"id": "q2", "question": "How do families in Oaxaca honour the dead in early November ?"},  # near-dup of q1
        {"id": "q3", "question": "SAMEANSWERS Which dances open a Yoruba wedding feast?", "subdomain_id": "11"},
        {"id": "q4", "question": "OFFTOPIC What makes Finnish sauna etiquette distinctive?", "domain": "customs"},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "cx"
    with StandIn(responder=respond) as server:
        args = ["generate", "culturax", "--questions", str(questions), "--out", str(out), "--generator", "openai:s"]
        assert (
            main([*args, "--base-url", server.base_url, "--cache-path", str(tmp_path / "c.sqlite"), "--no-progress"])
            == 0
        )
        assert server.n_requests == 4  # q1, q3 (twice: the first reply repeats an answer), q4; never q2
    report = json.loads((tmp_path / "cx.work" / "generation_report.json").read_text())
    [removed] = report["removed_near_duplicates"]
    assert (removed["id"], removed["twin_id"]) == ("q2", "q1")
    assert [r["key"] for r in report["invalid_replies"]] == ["q3"]
    assert "harmless: same as helpful" in report["invalid_replies"][0]["problems"]

    tasks = json.loads((tmp_path / "cx.work" / "review" / "labelstudio_tasks.json").read_text())
    assert [t["data"]["id"] for t in tasks] == ["q1", "q3", "q4"]
    export = [
        {**tasks[0], "id": 1, "annotations": [{"result": [_choice("accept")], "was_cancelled": False}]},
        {
            **tasks[1],
            "id": 2,
            "annotations": [
                {"result": [_choice("reject")], "was_cancelled": True},  # cancelled: ignored
                {"result": [_choice("edit"), _text("edit_honest", "It varies by region and family.")]},
            ],
        },
        {**tasks[2], "id": 3, "annotations": [{"result": [_choice("accept")]}]},
    ]
    decisions = tmp_path / "export.json"
    decisions.write_text(json.dumps(export), encoding="utf-8")
    assert main(["generate", "review-import", "--out", str(out), "--decisions", str(decisions)]) == 0
    data = datasets.load_dataset(str(out), "all")
    columns = ["id", "question", "helpful", "harmless", "honest", "subdomain_id", "subdomain", "domain", "topic"]
    columns += ["simhash", "cluster_id", "reference_suspect", "reference_suspect_reason", "split"]
    every = [row for split in data.values() for row in split]
    assert list(data["train"].features) == columns and len(every) == 3
    by_id = {r["id"]: r for r in every}
    assert by_id["q3"]["honest"] == "It varies by region and family." and by_id["q3"]["subdomain_id"] == 11
    assert (by_id["q3"]["subdomain"], by_id["q3"]["domain"]) == ("Culinary Arts", "Intangible Cultural Heritage")
    assert by_id["q1"]["cluster_id"] == "q1" and by_id["q1"]["subdomain_id"] is None
    assert all(len(r["simhash"]) == 16 and int(r["simhash"], 16) >= 0 for r in every)
    assert by_id["q4"]["reference_suspect"]
    assert "share almost no content words" in by_id["q4"]["reference_suspect_reason"]
    assert not by_id["q1"]["reference_suspect"] and by_id["q1"]["subdomain"] == "rituals"
    assert all(r["split"] == name for name, split in data.items() for r in split)
    assert json.loads((out / "build_report.json").read_text())["review"]["edited"] == 1


def _choice(value: str) -> dict:
    return {"from_name": "decision", "to_name": "item", "type": "choices", "value": {"choices": [value]}}


def _text(name: str, value: str) -> dict:
    return {"from_name": name, "to_name": "item", "type": "textarea", "value": {"text": [value]}}
