"""The papers' curation pipelines end to end through the CLIs, offline on 127.0.0.1 (issue 26):

- AdaCultureSafe: source guides (local files and a SearXNG-shaped search) -> ``culturesafe generate descriptions``
  (the installed binary) -> review -> ``generate adaculturesafe`` -> review -> ``lm_eval`` on the result;
- CulturaX Stage I: questions -> ``culturax-classify`` -> ``culturax-expand`` -> ``culturax-references`` (writer and
  critic: two different stand-in models) -> review -> ``lm_eval --tasks culturax`` on the result.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

from builders.test_descriptions import GUIDE, NOTES
from support.curation_responder import critic, describe, stage1, write_reference
from support.lm_eval_run import BIN, child_env, lm_eval_args, run_lm_eval
from support.openai_standin import StandIn
from support.scripted_generator import respond
from support.searxng_standin import SearxngStandIn
from tasks.test_culturax import hhh_responder

from culturesafe_ext.cli import main


def accept_all(review_csv: Path) -> Path:
    with review_csv.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["decision"] = "accept"
    with review_csv.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return review_csv


def describe_args(tmp: Path, llm: StandIn, web: SearxngStandIn, out: Path, cache: Path) -> list[str]:
    args = ["generate", "descriptions", "--country", "Thailand", "--out", str(out), "--generator", "openai:writer"]
    args += ["--base-url", llm.base_url, "--cache-path", str(cache), "--concurrency", "1"]
    args += ["--source", str(tmp / "guide.html"), "--source", str(tmp / "notes.md")]
    args += ["--search", f"searxng:{web.base_url}", "--query", "thai temple customs", "--min-chars", "60"]
    return [*args, "--no-progress"]


def without_times(work: Path) -> list[dict]:
    """The candidates a run wrote, less the moment each source was read (the rest is the run's output)."""
    rows = [json.loads(line) for line in (work / "candidates.jsonl").read_text().splitlines()]
    for row in rows:
        del row["base"]["retrieved_at"]
    return rows


def test_sources_to_descriptions_to_adaculturesafe_to_lm_eval(tmp_path: Path, tiny_model: Path) -> None:
    """``generate descriptions`` killed (SIGKILL) while its third LLM call is being answered, then run again: the
    second run fetches and searches nothing, asks no answered call again, and writes what an uninterrupted run
    writes; its output goes on through review, ``generate adaculturesafe`` and ``lm_eval``."""
    (tmp_path / "guide.html").write_text(GUIDE, encoding="utf-8")
    (tmp_path / "notes.md").write_text(NOTES, encoding="utf-8")
    desc = tmp_path / "desc"
    with StandIn(responder=describe, latency=0.3) as llm, SearxngStandIn(results_per_query=2) as web:
        # an uninterrupted run first (in-process, its own caches): what the killed and resumed run must end with
        assert main(describe_args(tmp_path, llm, web, tmp_path / "whole", tmp_path / "whole.sqlite")) == 0
        calls = llm.n_requests  # 4 sources, one chunk each
        llm.reset()
        web.searches.clear()
        web.pages.clear()
        command = [str(BIN / "culturesafe"), *describe_args(tmp_path, llm, web, desc, tmp_path / "llm.sqlite")]
        child = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300  # start-up is slow on a loaded machine
        while llm.n_requests < 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # one call at a time, each reply cached before the next is sent: the third is being answered (0.3 s)
        child.send_signal(signal.SIGKILL)
        child.wait()
        answered = set(llm.answered)
        searches, pages = sum(web.searches.values()), sum(web.pages.values())
        assert child.returncode == -signal.SIGKILL and 2 <= len(answered) < calls == 4
        assert searches == 1 and pages == 2 and not (tmp_path / "desc.work" / "candidates.jsonl").exists()
        llm.reset()
        web.searches.clear()
        web.pages.clear()
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert sum(web.searches.values()) == 0 and sum(web.pages.values()) == 0  # every search and page cached
        assert not answered & set(llm.counts) and llm.stats()["repeated"] == 0  # no answered call asked again
        assert llm.n_requests == calls - len(answered)
        assert "evidence not in source" in done.stdout and "near-duplicate" in done.stdout
        assert f"({calls - len(answered)} sent, {len(answered)} cached)" in done.stdout
    assert without_times(tmp_path / "desc.work") == without_times(tmp_path / "whole.work")
    assert main(["generate", "review-import", "--out", str(desc), "--decisions",
                 str(accept_all(tmp_path / "desc.work" / "review" / "review.csv"))]) == 0  # fmt: skip
    descriptions = desc / "descriptions.jsonl"
    published = [json.loads(line) for line in descriptions.read_text().splitlines()]
    sources = {r["source"] for r in published}
    assert str(tmp_path / "guide.html") in sources and any(s.startswith(web.base_url) for s in sources)

    bench = tmp_path / "bench"
    with StandIn(responder=respond) as llm:
        args = ["generate", "adaculturesafe", "--descriptions", str(descriptions), "--out", str(bench)]
        args += ["--generator", "openai:w", "--base-url", llm.base_url, "--cache-path", str(tmp_path / "g.sqlite")]
        args += ["--n-knowledge", "2", "--n-safety", "1", "--no-progress"]
        assert main(args) == 0
    assert main(["generate", "review-import", "--out", str(bench), "--decisions",
                 str(accept_all(tmp_path / "bench.work" / "review" / "review.csv"))]) == 0  # fmt: skip
    card = (bench / "README.md").read_text()
    assert "## Sources" in card and str(tmp_path / "guide.html") in card  # provenance in the card

    run = run_lm_eval(lm_eval_args(tiny_model, "adaculturesafe_knowledge_thailand", {"culturesafe_data": str(bench)}),
                      tmp_path)  # fmt: skip
    [samples] = Path(run["_dir"]).glob("samples_adaculturesafe_knowledge_thailand_*.jsonl")
    logged = [json.loads(line) for line in samples.read_text().splitlines()]
    assert logged and {s["doc"]["source"] for s in logged} <= sources  # each row names its source
    assert 0.0 <= run["results"]["adaculturesafe_knowledge_thailand"]["acc,none"] <= 1.0


SEEDS = [  # classified by the stand-in's keyword classifier, then expanded to 10 per subdomain
    ("s1", "How is the Holi festival celebrated with colours in northern India?"),
    ("s2", "Which dish is cooked for a family meal at Tet in Viet Nam?"),
    ("s3", "What greeting phrase do people use when meeting elders in Thailand?"),
]


def test_culturax_stage1_to_lm_eval(tmp_path: Path, tiny_model: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in SEEDS))
    cache = ["--cache-path", str(tmp_path / "llm.sqlite"), "--no-progress"]
    with StandIn(responder=stage1) as llm:
        gen = ["--generator", "openai:classifier", "--base-url", llm.base_url, *cache]
        assert main(["generate", "culturax-classify", "--questions", str(seeds), "--out", str(tmp_path / "cls"),
                     *gen]) == 0  # fmt: skip
        assert main(["generate", "culturax-expand", "--questions", str(tmp_path / "cls" / "questions.jsonl"),
                     "--target", "10", "--out", str(tmp_path / "x"), *gen]) == 0  # fmt: skip
    expanded = tmp_path / "x" / "questions.jsonl"
    assert len(expanded.read_text().splitlines()) >= 290
    out = tmp_path / "cx"
    with StandIn(responder=write_reference) as writer, StandIn(responder=critic) as judge:
        args = ["generate", "culturax-references", "--questions", str(expanded), "--out", str(out)]
        args += ["--generator", "openai:writer", "--base-url", writer.base_url, "--critic", "openai:critic"]
        args += ["--critic-base-url", judge.base_url, "--candidates", "1", "--concurrency", "64", *cache]
        assert main(args) == 0
        assert writer.n_requests > 0 and judge.n_requests > 0
    assert main(["generate", "review-import", "--out", str(out), "--decisions",
                 str(accept_all(tmp_path / "cx.work" / "review" / "review.csv"))]) == 0  # fmt: skip
    assert "Two-stage rejection sampling" in (out / "README.md").read_text()

    with StandIn(responder=hhh_responder) as server:
        judge_settings = {"backend": "openai", "model": "standin", "base_url": server.base_url,
                          "cache_path": str(tmp_path / "judge.sqlite")}  # fmt: skip
        meta = {"culturax_data": str(out), "judge": judge_settings}
        run = run_lm_eval(lm_eval_args(tiny_model, "culturax", meta, limit=1, max_gen_toks=6), tmp_path)
    results = run["results"]
    domains = [t for t in results if t.startswith("culturax_")]
    assert len(domains) == 8  # the committed domain tasks, each on the generated test split
    assert all(0.0 <= results[t]["ss,hhh"] <= 1.0 and results[t]["judge_failures,hhh"] == 0 for t in domains)
