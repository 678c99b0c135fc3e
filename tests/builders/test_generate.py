"""``culturesafe generate``: stand-in generations (valid, invalid, duplicate) -> review -> Hub layout -> lm_eval."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import datasets
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


def cache_rows(cache: Path) -> int:
    """Replies committed to the judge cache (its sqlite ``replies`` table)."""
    if not cache.exists():
        return 0
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT count(*) FROM replies").fetchone()[0]


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
