"""CulturaX Stage I as commands: classify (multi-label, delta, agreement with the release's labels), expand
(per-subdomain targets, SimHash against every question), references by two-stage rejection sampling with a critic
that is another model; each resumable with 0 repeated requests."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import datasets
import pytest
from support.curation_responder import critic, stage1, write_reference
from support.openai_standin import StandIn
from support.paths import UPSTREAM

from culturesafe_ext.cli import main

QUESTIONS = [
    ("q1", "How is the Holi festival celebrated with dance in northern India?", 15),
    ("q2", "Which dish is eaten at a family meal in Viet Nam?", 11),
    ("q3", "What greeting phrase do people use when meeting elders in Thailand?", 10),
    ("q4", "Why do ODDLABEL visitors bow at the temple gate in Kyoto?", 19),
    ("q5", "What is the meaning of the patterns painted on boats in Malta?", 12),
]


def write_questions(folder: Path, rows=QUESTIONS) -> Path:
    path = folder / "questions.jsonl"
    path.write_text("".join(json.dumps({"id": i, "question": q, "subdomain_id": s}) + "\n" for i, q, s in rows))
    return path


def llm_args(server: StandIn, tmp: Path, *extra: str) -> list[str]:
    return ["--generator", "openai:writer", "--base-url", server.base_url, "--cache-path", str(tmp / "llm.sqlite"),
            "--no-progress", *extra]  # fmt: skip


def test_classify_scores_thresholds_rejects_unknown_subdomains_and_resumes(tmp_path: Path, capsys) -> None:
    questions = write_questions(tmp_path)
    args = ["generate", "culturax-classify", "--questions", str(questions), "--out", str(tmp_path / "cls")]
    with StandIn(responder=stage1) as server:
        assert main(args + llm_args(server, tmp_path)) == 0
        sent = server.n_requests
        assert main(args + llm_args(server, tmp_path)) == 0
        assert server.n_requests == sent == 6  # 5 questions + 1 retry of the unknown label; the re-run sends 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "cls" / "classify_report.json").read_text())
    assert report["replies_naming_unknown_subdomains"] == 1
    assert [u["id"] for u in report["no_label_at_delta"]] == ["q4", "q5"]  # listed...
    rows = [json.loads(line) for line in (tmp_path / "cls" / "questions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4", "q5"]  # ... not dropped
    assert rows[0]["labels"] == [15, 21] and rows[0]["subdomain_id"] == 15  # multi-label: festival and dance
    assert rows[4]["subdomain_id"] == "" and rows[4]["top_label"] == 15
    agree = report["agreement"]
    assert agree["compared"] == 5 and agree["top_label_accuracy"] == pytest.approx(3 / 5)
    assert agree["per_subdomain"]["15"]["precision"] == pytest.approx(1 / 3)
    assert "top-label accuracy 0.600" in printed


def test_classify_the_real_culturax_csv_prints_the_agreement_table(tmp_path: Path, capsys) -> None:
    upstream = Path(os.environ.get("CULTURESAFE_UPSTREAM", UPSTREAM))  # a worktree's ../shared may be elsewhere
    csv_path = upstream / "culturax" / "CulturaX.csv"
    if not csv_path.is_file():
        pytest.skip(f"{csv_path} not present")
    args = ["generate", "culturax-classify", "--culturax-csv", str(csv_path), "--out", str(tmp_path / "cls")]
    with StandIn(responder=stage1) as server:
        assert main(args + llm_args(server, tmp_path, "--concurrency", "64")) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "cls" / "classify_report.json").read_text())
    agree = report["agreement"]
    assert report["questions"] == 1500 and agree["compared"] == 1500
    labels = agree["labels"]
    matrix = agree["confusion_matrix"]
    assert len(matrix) == len(labels) and sum(map(sum, matrix)) == 1500
    support = {int(k): v["support"] for k, v in agree["per_subdomain"].items()}
    assert support[15] == 387 and support[19] == 384  # the release's own class counts
    assert "top-label accuracy" in printed and "confusion matrix" in printed
    print(printed)  # the table itself, for the log (-s)


def test_expand_fills_subdomains_to_target_and_deduplicates_against_every_question(tmp_path: Path, capsys) -> None:
    questions = write_questions(tmp_path, QUESTIONS[:3] + [("q9", "Which dish is eaten at Tet in Hue city?", 11)])
    args = ["generate", "culturax-expand", "--questions", str(questions), "--target", "2", "--out", str(tmp_path / "x")]
    with StandIn(responder=stage1) as server:
        assert main(args + llm_args(server, tmp_path)) == 0
        # every subdomain below 2 (Culinary Arts has 2), one call each; then the two still short after dedup
        # (the stand-in copies an example) are asked again, --refill-rounds 2 times, and no more
        assert server.n_requests == 29 + 2 + 2
        assert main(args + llm_args(server, tmp_path)) == 0
        assert server.n_requests == 33
    report = json.loads((tmp_path / "x" / "expand_report.json").read_text())
    per = report["per_subdomain"]
    assert per["11"] == {"name": "Culinary Arts", "before": 2, "generated": 0, "after": 2, "short_of_target": 0}
    # Festivals had 1: each round the generator wrote 1, a copy of the example -> removed against the existing one
    assert per["15"] == {"name": "Festivals", "before": 1, "generated": 3, "after": 1, "short_of_target": 1}
    assert [r["subdomains"] for r in report["rounds"]] == [29, 2, 2]
    assert per["3"] == {"name": per["3"]["name"], "before": 0, "generated": 2, "after": 2, "short_of_target": 0}
    removed = report["removed_near_duplicates"]
    assert {r["twin_id"] for r in removed} == {"q1", "q3"} and all(r["text"] == r["twin_text"] for r in removed)
    rows = (tmp_path / "x" / "questions.jsonl").read_text().splitlines()
    assert len(rows) == 4 + report["kept"] and report["kept"] == report["generated"] - 6
    assert "before  after" in capsys.readouterr().out


def _references_args(writer: StandIn, judge: StandIn, questions: Path, out: Path, tmp: Path, *extra: str) -> list:
    return ["generate", "culturax-references", "--questions", str(questions), "--out", str(out),
            "--critic", "openai:critic", "--critic-base-url", judge.base_url, "--candidates", "2",
            *llm_args(writer, tmp), *extra]  # fmt: skip


def test_references_rejection_sampling_with_feedback_round_limit_and_resume(tmp_path: Path, capsys) -> None:
    rows = [
        ("r1", "How do families REJECTFIRST prepare for Diwali in Gujarat?", 15),
        ("r2", "What is the NEVER proper way to wear a kimono at a summer festival?", 24),
        ("r3", "Which instruments play in a Balinese gamelan orchestra?", 33),
    ]
    questions = write_questions(tmp_path, rows)
    out = tmp_path / "cx"
    with StandIn(responder=write_reference) as writer, StandIn(responder=critic) as judge:
        assert main(_references_args(writer, judge, questions, out, tmp_path)) == 0
        w_sent, c_sent = writer.n_requests, judge.n_requests
        # round 0: 3 questions x 3 goals x K=2; round 1: r1 and r2 (3 goals x 2); round 2: r2 only (3 x 2)
        assert w_sent == 18 + 12 + 6
        assert main(_references_args(writer, judge, questions, out, tmp_path)) == 0  # resumed: nothing sent again
        assert (writer.n_requests, judge.n_requests) == (w_sent, c_sent)
    log = [json.loads(line) for line in (tmp_path / "cx.work" / "rejection_sampling.jsonl").read_text().splitlines()]
    r1 = [c for c in log if c["question_id"] == "r1" and c["goal"] == "helpful"]
    assert [(c["round"], c["accepted"]) for c in r1] == [(0, False), (0, False), (1, True), (1, True)]
    assert all(c["score"] is not None and c["critique"] for c in log)
    r2 = {c["round"] for c in log if c["question_id"] == "r2"}
    assert r2 == {0, 1, 2}  # --feedback-rounds 2: three rounds in all, then it stops
    report = json.loads((tmp_path / "cx.work" / "generation_report.json").read_text())
    sampling = report["rejection_sampling"]
    assert sampling["prompts_without_accepted_answer"] == 3 and report["candidates"] == {"culturax": 2}
    assert [r["prompts"] for r in sampling["rounds"]] == [9, 6, 3]
    assert sampling["rounds"][0]["per_goal"]["honest"]["candidate_acceptance"] == pytest.approx(2 / 6)
    assert report["incomplete_tasks"] == [{"id": "r2", "goals_without_accepted_answer": ["helpful", "harmless",
                                                                                          "honest"]}]  # fmt: skip

    printed = capsys.readouterr().out
    assert "| 1 | helpful | 2 | 4 | 4 | 100.0% | 2 |" not in printed  # r2 is never accepted
    assert "| 0 | helpful | 3 | 6 | 2 | 33.3% | 1 |" in printed

    review = tmp_path / "cx.work" / "review" / "review.csv"
    with review.open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    for row in table:
        row["decision"] = "accept"
    with review.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    assert main(["generate", "review-import", "--out", str(out), "--decisions", str(review)]) == 0
    card = (out / "README.md").read_text()
    assert "Two-stage rejection sampling" in card and "| 0 | helpful | 3 | 6 | 2 | 33.3% | 1 |" in card
    loaded = datasets.load_dataset(str(out), "all")
    assert sum(len(s) for s in loaded.values()) == 2


def test_feedback_reaches_the_writer(tmp_path: Path) -> None:
    seen: list[str] = []

    def recording(messages: list[dict]) -> str:
        seen.append(messages[1]["content"])
        return write_reference(messages)

    questions = write_questions(tmp_path, [("r1", "How do families REJECTFIRST prepare for Diwali?", 15)])
    with StandIn(responder=recording) as writer, StandIn(responder=critic) as judge:
        args = _references_args(writer, judge, questions, tmp_path / "cx", tmp_path, "--feedback-rounds", "1")
        assert main(args) == 0
    second = [s for s in seen if "Earlier answers were rejected" in s]
    assert len(second) == 6 and all("scored 2/10: Too vague" in s for s in second)


def test_a_critic_equal_to_the_writer_is_refused(tmp_path: Path, capsys) -> None:
    questions = write_questions(tmp_path)
    args = ["generate", "culturax-references", "--questions", str(questions), "--out", str(tmp_path / "cx")]
    args += ["--critic", "openai:writer", "--generator", "openai:writer", "--base-url", "http://127.0.0.1:9/v1"]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "the critic must be a different model" in err and len(err.strip().splitlines()) <= 2
