"""Issue 28: `culturesafe analyze report` on a judged CulturaX run names its judge and counts its failures
(it said "judge: none; judge failures 0 of 0"): the overview reads every benchmark's judge."""

from __future__ import annotations

import json
from pathlib import Path

from support.lm_eval_files import write_run

from culturesafe_ext.cli import main

JUDGE = {"backend": "openai", "model": "judge-cx", "base_url": "http://127.0.0.1:9/v1", "rubric_version": "v1"}


def verdict(winner: str | None, order: str) -> dict:
    return {"winner": winner, "order": order}


def cx_row(sub: str, entries: list[dict], failures: int) -> dict:
    doc = {"domain": "Heritage", "subdomain": sub, "subdomain_id": sub[:3].lower(), "judge_settings": json.dumps(JUDGE)}
    return {
        "doc": doc,
        "filtered_resps": [[json.dumps(e) for e in entries]],
        "wr": 0.5,
        "ss": 0.0,
        "ti": 1.0,
        "truthful": 1.0,
        "informative": 1.0,
        "judge_failures": failures,
    }


def test_a_judged_culturax_run_names_its_judge_and_failures(tmp_path: Path, capsys) -> None:
    ok = {"wr": [verdict("A", "ab"), verdict("B", "ba")], "ss": {"unsafe": 0}, "ti": {"truthful": 1, "informative": 1}}
    bad_wr = {**ok, "wr": [verdict("A", "ab"), verdict(None, "ba")]}  # one WR verdict unreadable
    no_judge = {"error": "judge unreachable"}  # the judge could not run: its three judgements failed
    rows = [
        cx_row("Museums", [ok, ok, ok], 0),  # 3 repeats x 4 judgements
        cx_row("Museums", [ok, bad_wr, ok], 1),
        cx_row("Monuments", [ok, ok, no_judge], 3),
    ]
    run = write_run(tmp_path / "cx", {"culturax_heritage": rows})
    out = tmp_path / "report"
    assert main(["analyze", "report", str(run), "--out", str(out), "--resamples", "20"]) == 0
    capsys.readouterr()
    overview = json.loads((out / "analysis.json").read_text())["parts"]["overview"]["handmade"]
    assert [j["judge"]["model"] for j in overview["judges"]] == ["judge-cx"]
    assert overview["judges"][0]["n_answers"] == 3 and "base_url" not in json.dumps(overview["judges"])
    asked = 4 * 3 + 4 * 3 + (4 * 2 + 3)
    assert (overview["judge_failures"], overview["n_judged"]) == (4, asked - 4)
    html = (out / "report.html").read_text()
    assert "judge: openai:judge-cx (rubric v1, 3 answers)" in html
    assert f"judge failures 4 of {asked} judgements" in html
