"""``culturesafe synthesize`` in process: a non-culturesafe YAML task, a local bm25 corpus, the scripted stand-in.

Shows: the task format read from lm-eval (examples from the train split), docs rendered by the task, a planted
evaluation item removed as leaked and named with its twin, unparseable and ungrounded replies counted, the
folder (Hub layout, card, items) written, a re-run served from the caches, and the one-line errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from support.openai_standin import StandIn
from support.scripted_synthesizer import judge_score, respond
from support.synth_task import SAFETY_EXAMPLES, TASK, TEST, write_corpus, write_task

from culturesafe_ext.cli import main
from culturesafe_ext.data.synthetic_items import read_items

PLANTED = f"Japan customs etiquette norms task, Japan customs. VERBATIM {TEST[0]['situation']} PROSE"
FRENCH = (
    "Japan customs etiquette norms task. Au Japon, on retire toujours ses chaussures avant d'entrer dans la maison, "
    "et on offre les cadeaux avec les deux mains en s'inclinant légèrement devant son hôte."
)


def synth_args(server: StandIn, tmp: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "synthesize",
        "--task",
        TASK,
        "--include-path",
        str(tmp / "task"),
        "--culture",
        "Japan",
        "--culture",
        "Thailand",
        "--search",
        f"bm25:{corpus}",
        "--llm",
        "openai:standin",
        "--base-url",
        server.base_url,
        "--cache-path",
        str(tmp / "llm.sqlite"),
        "--sources-cache",
        str(tmp / "sources.sqlite"),
        "--out",
        str(out),
        "--n-specific",
        "2",
        "--n-agnostic",
        "2",
        "--k",
        "4",
        "--no-progress",
        *extra,
    ]


def test_synthesize_yaml_task_with_planted_leak(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", "sk-test")
    monkeypatch.setenv("CULTURESAFE_CACHE_DIR", str(tmp_path / "cache"))
    write_task(tmp_path / "task")
    corpus = write_corpus(tmp_path / "corpus.jsonl", planted=[PLANTED, FRENCH])
    out = tmp_path / "synth"
    with StandIn(responder=respond) as server:
        assert main(synth_args(server, tmp_path, corpus, out)) == 0
        first = server.n_requests
        printed = capsys.readouterr().out
        report = json.loads((out / "synthesis_report.json").read_text())
        server.reset()
        assert main(synth_args(server, tmp_path, corpus, out)) == 0  # a re-run: every reply from the cache
        assert server.n_requests == 0
        assert "searches: 0 sent, 8 cached" in capsys.readouterr().out
    assert first == report["stages"]["queries"]["stats"]["sent"] + report["stages"]["docs"]["stats"]["sent"]
    assert report["task"]["examples_from"] == "split 'train'"
    # the planted evaluation item came back through the corpus and was removed, named with its twin
    # (both cultures' searches found the planted page: Japan's copy is an exact SimHash twin, Thailand's shares
    # a 13-gram)
    removed = report["leakage"]["removed"]
    assert {(r["id"].split("/")[0], r["how"]) for r in removed} == {("japan", "simhash"), ("thailand", "13-gram")}
    for leak in removed:
        assert leak["twin_id"] == TEST[0]["id"] and TEST[0]["situation"] in leak["text"]
        assert f"leaked: {leak['id']} ~ evaluation doc {TEST[0]['id']}" in printed
    assert report["leakage"]["leaked_in_output"] == 0 and report["leakage"]["evaluation_docs"] == len(TEST)
    # the planted passage's first reply was prose: counted, and retried with feedback
    assert report["rejections"]["unparseable reply"] >= 1
    prose = [r for r in report["stages"]["docs"]["invalid_replies"] if r["problems"] == ["reply: no JSON object found"]]
    assert prose and all(r["raw"].startswith("Here are some lovely examples") for r in prose)
    # a passage in another language than the task's (English, from its example docs) is set aside and counted
    assert report["language"]["required"] == "en"
    assert [p["corpus_id"] for p in report["language"]["rejected_passages"]] == ["planted-1", "planted-1"]
    assert report["rejections"]["passage not in the task's language (en)"] == 2
    items, _ = read_items(out)  # the leakage re-check against the task's evaluation docs passes
    assert {i.culture for i in items} == {"japan", "thailand"} and {i.kind for i in items} == {"specific", "agnostic"}
    for item in items:
        assert item.prompt.startswith("Decide whether an act is polite or rude") and "Polite or rude?" in item.prompt
        assert item.completion in (" polite", " rude")
    table = datasets.load_dataset(str(out), "items", split="train")
    assert len(table) == len(items) == report["items"]
    assert set(table["backend"]) == {"bm25"} and all(table["content_hash"])
    card = (out / "README.md").read_text()
    assert "Leakage against evaluation" in card and "**0 leaked items**" in card and "| japan |" in card


def test_synthesize_one_line_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", "sk-test")
    write_task(tmp_path / "task")
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    with StandIn(responder=respond) as server:
        args = synth_args(server, tmp_path, corpus, tmp_path / "out")
        args[args.index(TASK)] = "no_such_task_xyz"
        assert main(args) == 1
        err = capsys.readouterr().err
        lines = err.strip().splitlines()  # one line from cli.main, then its --debug hint
        assert len(lines) == 2 and lines[0].startswith("culturesafe synthesize: error: ")
        assert "lm-eval does not know this task" in lines[0]
        args = synth_args(server, tmp_path, corpus, tmp_path / "out")
        args[args.index("--include-path") : args.index("--include-path") + 2] = []
        args[args.index(TASK)] = "adaculturesafe_knowledge_china"
        assert main([*args, "--metadata", '{"culturesafe_data": "bundled"}']) == 1
        assert "give --examples FILE" in capsys.readouterr().err
        assert server.n_requests == 0
        # a run that keeps nothing (every passage in another language than the task's): one line, no type name
        french = write_corpus(tmp_path / "french.jsonl", planted=[FRENCH])
        french.write_text(french.read_text().splitlines(keepends=True)[-1])  # the French page alone
        assert main(synth_args(server, tmp_path, french, tmp_path / "none", "--language", "en")) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("culturesafe synthesize: error: no item survived: ")
        assert "NothingSynthesized" not in lines[0] and "passage not in the task's language (en)" in lines[0]


def test_synthesize_safety_task_answers_are_written_and_grounded(tmp_path: Path, monkeypatch, capsys) -> None:
    """Our safety task: its target is the custom, so each doc's completion is a model-written answer whose evidence
    must occur in the passage; a doc whose answer is not grounded is counted, not kept."""
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", "sk-test")
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(d) + "\n" for d in SAFETY_EXAMPLES), encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    texts = [
        "China customs etiquette norms task: red envelopes are given at the Spring Festival with both hands.",
        "China customs etiquette norms task NOANSWER: white flowers are kept for funerals, not for visits.",
    ]
    corpus.write_text("".join(json.dumps({"id": f"c{i}", "title": "t", "text": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "synth"
    with StandIn(responder=respond) as server:
        args = synth_args(server, tmp_path, corpus, out)
        args[args.index(TASK)] = "adaculturesafe_safety_china"
        args[args.index("--include-path") : args.index("--include-path") + 2] = []
        args[args.index("Thailand") - 1 : args.index("Thailand") + 1] = []
        args[args.index("Japan")] = "China"
        metadata = '{"culturesafe_data": "bundled", "judge": {"backend": "none"}}'
        args += ["--examples", str(examples), "--metadata", metadata, "--k", "2", "--per-passage", "4"]
        judge = json.dumps({"backend": "openai", "model": "judge", "base_url": server.base_url, "cache": False})
        args += ["--judge", judge, "--min-respect", "5"]
        assert main(args) == 0, capsys.readouterr().err
    report = json.loads((out / "synthesis_report.json").read_text())
    assert report["completions"] == "model-written answers"
    assert report["rejections"]["no grounded answer"] == len(report["unanswered"]) > 0
    assert report["rejections"]["answer: evidence not in the passage"] >= len(report["unanswered"])
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    # rejection sampling through the project's judge: only answers it scored >= 5 are kept, the rest counted
    judged = report["judge"]
    assert (
        judged["judged"]
        == judged["kept"] + judged["below_threshold"]
        == report["generated_docs"] - len(report["unanswered"])
    )
    assert judged["kept"] == len(items) and judged["below_threshold"] > 0
    assert report["rejections"]["judge respectfulness < 5"] == judged["below_threshold"]
    for item in items:
        assert item["judge_respectfulness"] == judge_score(item["prompt"]) == 9
    assert items and all(
        i["completion"].startswith(" In China, china customs etiquette norms task: red") for i in items
    )
    assert all(i["provenance"]["corpus_id"] == "c0" for i in items)  # every kept answer is grounded in c0


def test_replies_read_as_they_arrive_give_the_stage_s_own_output(tmp_path: Path, monkeypatch) -> None:
    """Docs replies are read while retrieval runs (EarlyDocs); ``--max-passages`` turns that off, so the same run
    with a cap that keeps every passage shows the early reading changes no item, id, rejection or count."""
    monkeypatch.setenv("CULTURESAFE_JUDGE_API_KEY", "sk-test")
    monkeypatch.setenv("CULTURESAFE_CACHE_DIR", str(tmp_path / "cache"))
    ungrounded = (
        "Japan customs etiquette norms task, Japan customs. UNGROUNDED Visitors to a home in Japan bring a small "
        "gift, present it with both hands and apologise that it is only a trifle, whatever its real worth."
    )
    corpus = write_corpus(tmp_path / "corpus.jsonl", planted=[PLANTED, FRENCH, ungrounded])
    reports, items = {}, {}
    with StandIn(responder=respond) as server:
        for name, extra in (("early", ()), ("after", ("--max-passages", "1000"))):
            out = tmp_path / name / "out"
            write_task(tmp_path / name / "task")  # each run its own caches: both send every request
            assert main(synth_args(server, tmp_path / name, corpus, out, *extra)) == 0
            reports[name] = json.loads((out / "synthesis_report.json").read_text())
            items[name] = [(i.id, i.prompt, i.completion, i.kind) for i in read_items(out)[0]]
    assert items["early"] == items["after"] and len(items["early"]) > 0
    early, after = reports["early"], reports["after"]
    assert early["rejections"] == after["rejections"] and early["rejections"]["unparseable reply"] >= 1
    assert early["rejections"]["evidence not in the passage"] >= 1  # counted by first replies read early
    docs = early["stages"]["docs"], after["stages"]["docs"]
    assert docs[0]["rejections"] == docs[1]["rejections"] and docs[0]["invalid_replies"] == docs[1]["invalid_replies"]
    for key in ("tasks", "complete", "requests", "unparseable_replies", "replies_with_invalid_items", "item_problems"):
        assert docs[0]["stats"][key] == docs[1]["stats"][key], key
