"""``culturesafe generate descriptions``: local files (HTML, Markdown, PDF), URLs (pages, PDFs) and searches on
127.0.0.1 -> a stand-in LLM -> evidence check -> SimHash across sources -> review -> descriptions.jsonl that ``generate
adaculturesafe`` reads as it is; every rejection counted by reason; a resumed run sends nothing again."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from support.curation_responder import describe
from support.openai_standin import StandIn
from support.pdfs import FileServer, blank_pdf, text_pdf
from support.searxng_standin import SearxngStandIn

from culturesafe_ext.cli import main

GUIDE = (
    "<html><head><title>Thai etiquette</title></head><body><nav>Home | Login | About</nav><main><article>"
    "<h1>Thai etiquette</h1>"
    "<p>People greet one another with the wai, pressing the palms together and bowing the head slightly.</p>"
    "<p>Shoes are always removed before entering a private home or the hall of a Buddhist temple.</p>"
    "<p>The head is the most sacred part of the body, so touching another person's head is offensive.</p>"
    "</article></main><footer>Copyright 2026 Example guides. Cookie settings.</footer></body></html>"
)
NOTES = (
    "# Notes on Thailand\n\n"
    "Shoes are always removed before entering a private home or the hall of a Buddhist temple.\n\n"
    "Monks may not be touched by women, who place their offerings on a cloth laid in front of the monk.\n"
)


ADVICE = [  # a consular travel-advice PDF, fetched by URL
    "Visitors should dress modestly when they enter the grounds of the Grand Palace.",
    "Images of the Buddha must be treated with respect and may not leave the country without a permit.",
]


def _sources(tmp: Path) -> list[str]:
    (tmp / "guide.html").write_text(GUIDE, encoding="utf-8")
    (tmp / "notes.md").write_text(NOTES, encoding="utf-8")
    (tmp / "empty.md").write_text("# Nothing here\n", encoding="utf-8")
    (tmp / "huge.md").write_text("Temple etiquette matters. " * 4000, encoding="utf-8")  # ~100 KB
    (tmp / "scan.pdf").write_bytes(blank_pdf())
    return [str(tmp / n) for n in ("guide.html", "notes.md", "empty.md", "huge.md", "scan.pdf")]


def _args(llm: StandIn, tmp: Path, out: Path, *extra: str) -> list[str]:
    return [
        "generate", "descriptions", "--country", "Thailand", "--out", str(out), "--generator", "openai:writer",
        "--base-url", llm.base_url, "--cache-path", str(tmp / "llm.sqlite"), "--max-bytes", "50000",
        "--min-chars", "60", "--max-attempts", "2", "--no-progress", *extra,
    ]  # fmt: skip


def test_sources_to_descriptions_with_counted_rejections_and_resume(tmp_path: Path, capsys) -> None:
    files = _sources(tmp_path)
    out = tmp_path / "desc"
    pdfs = {"advice.pdf": (text_pdf(ADVICE, title="Travel advice"), "application/pdf"),
            "scan.pdf": (blank_pdf(), "application/pdf")}  # fmt: skip
    with StandIn(responder=describe) as llm, SearxngStandIn(results_per_query=2) as web, FileServer(pdfs) as host:
        extra = [x for f in files for x in ("--source", f)]
        extra += ["--source", host.url("advice.pdf"), "--source", host.url("scan.pdf")]
        extra += ["--source", f"{web.base_url}/pages/missing-page", "--search", f"searxng:{web.base_url}"]
        extra += ["--query", "thai temple customs", "--query", "big pages"]
        assert main(_args(llm, tmp_path, out, *extra)) == 0
        first = capsys.readouterr().out
        sent, fetched, hosted = llm.n_requests, web.n_requests, dict(host.requests)
        report = json.loads((tmp_path / "desc.work" / "generation_report.json").read_text())
        # resumed: every LLM reply, page and search comes from the caches
        assert main(_args(llm, tmp_path, out, *extra)) == 0
        assert llm.n_requests == sent and web.n_requests == fetched and dict(host.requests) == hosted
    reasons = report["rejections_by_reason"]
    assert reasons["no main text"] == 1  # empty.md
    assert reasons["over the size cap"] >= 2  # huge.md and the stand-in's streamed "big" pages
    assert reasons["pdf has no text"] == 2 and reasons["HTTP 404"] == 1  # scan.pdf, as a file and by URL
    # one invented entry per chunk: its evidence is in no source
    assert reasons["evidence not in source"] == report["stats"]["complete"] >= 4
    assert reasons["near-duplicate"] >= 1  # the shoes sentence is in guide.html and notes.md
    per = report["per_source"]
    assert per[files[0]]["candidates"] == 3 and per[files[1]]["proposed"] == 3
    assert any(s.startswith(web.base_url + "/pages/thai-temple-customs") for s in per)
    advice = per[host.url("advice.pdf")]  # a PDF by URL: its text layer, decomposed like any page
    assert advice["kind"] == "url" and advice["title"] == "Travel advice" and advice["candidates"] == 2
    assert "rejections: " in first and "evidence not in source" in first

    review = tmp_path / "desc.work" / "review" / "review.csv"
    with review.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == report["candidates"]["description"]
    for row in rows:
        row["decision"] = "accept"
    rows[0]["decision"] = "reject"
    rows[1]["decision"], rows[1]["description"] = "edit", rows[1]["description"] + " (edited)"
    with review.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["generate", "review-import", "--out", str(out), "--decisions", str(review)]) == 0
    published = [json.loads(line) for line in (out / "descriptions.jsonl").read_text().splitlines()]
    assert len(published) == len(rows) - 1 and published[0]["description"].endswith("(edited)")
    for row in published:
        assert row["source"] and row["content_hash"] and row["evidence"] and row["country"] == "Thailand"

    # generate adaculturesafe reads it as it is; each row keeps its source, and the card lists them
    from support.scripted_generator import respond

    data = tmp_path / "bench"
    with StandIn(responder=respond) as llm:
        args = ["generate", "adaculturesafe", "--descriptions", str(out / "descriptions.jsonl"), "--out", str(data)]
        args += ["--generator", "openai:w", "--base-url", llm.base_url, "--cache-path", str(tmp_path / "g.sqlite")]
        args += ["--n-knowledge", "1", "--n-safety", "1", "--no-progress"]
        assert main(args) == 0
    report = json.loads((tmp_path / "bench.work" / "generation_report.json").read_text())
    assert set(report["sources"]) == {r["source"] for r in published}


def test_query_without_search_backend_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    args = ["generate", "descriptions", "--country", "Thailand", "--out", str(tmp_path / "o"), "--generator"]
    args += ["openai:w", "--base-url", "http://127.0.0.1:9/v1", "--query", "x"]
    assert main(args) != 0
    assert "--query needs --search" in capsys.readouterr().err


def test_demo_model_through_the_hf_backend_is_plumbing_with_every_reply_accounted(
    tmp_path: Path, demo_model: Path, capsys
) -> None:
    """SmolLM2-135M as the writer (``--generator hf:...``): whatever it writes, each reply is a description, a
    counted rejection, or a chunk without a usable reply whose raw reply and problem are in the report."""
    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    args = ["generate", "descriptions", "--country", "Thailand", "--out", str(tmp_path / "desc"), "--generator",
            f"hf:{demo_model}", "--cache-path", str(tmp_path / "llm.sqlite"), "--source", str(tmp_path / "notes.md"),
            "--min-chars", "60", "--max-attempts", "1", "--max-tokens", "24", "--no-progress"]  # fmt: skip
    code = main(args)
    printed, err = capsys.readouterr()
    report = json.loads((tmp_path / "desc.work" / "generation_report.json").read_text())
    stats = report["stats"]
    if report["candidates"]["description"]:
        assert code == 0
    else:  # nothing to review: the command fails with one line that points at the report
        assert code == 1 and "no valid candidates from 1 requests" in err and "generation_report.json" in err
    assert report["generator"]["backend"] == "hf" and stats["tasks"] == stats["sent"] == 1
    assert stats["complete"] + stats["incomplete"] == 1
    [source] = report["per_source"].values()
    checked = sum(r["stage"] in ("check", "dedup") for r in report["rejections"])
    assert source["proposed"] == source["candidates"] + checked  # every proposed description kept or counted
    failed = stats["truncated_replies"] + stats["unparseable_replies"] + stats["filtered_replies"]
    assert len(report["incomplete_tasks"]) == stats["incomplete"] == report["rejections_by_reason"].get(
        "no usable reply", 0
    ) and (stats["incomplete"] == 0 or failed + stats["failed_requests"] + stats["replies_with_invalid_items"] >= 1)
    for task in report["incomplete_tasks"]:  # a 135M model rarely writes the JSON asked for: reported, not skipped
        [attempt] = task["attempts"]
        assert task["source_id"] == str(tmp_path / "notes.md") and attempt["problems"]
        assert isinstance(attempt["raw"], str) or attempt["error"]
        assert "without a usable reply" in printed
