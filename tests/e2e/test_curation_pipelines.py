"""The papers' curation pipelines end to end through the CLIs, offline on 127.0.0.1 (issue 26):

- AdaCultureSafe: source guides (local files and a SearXNG-shaped search) -> ``culturesafe generate descriptions``
  (the installed binary, killed mid-run and resumed) -> review -> ``generate adaculturesafe`` -> review;
- CulturaX Stage I: questions -> ``culturax-classify`` -> ``culturax-expand`` -> ``culturax-references`` (writer and
  critic: two different stand-in models) -> review;
- then one ``lm_eval`` run over both results (``--tasks adaculturesafe_knowledge_thailand,culturax``): one process
  start-up instead of two, the pipelines built once per module and shared by the tests that read them.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from builders.test_descriptions import GUIDE, NOTES
from builders.test_generate import cache_rows
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
        row.get("base", {}).pop("retrieved_at", None)
    return rows


def clear(llm: StandIn, web: SearxngStandIn) -> None:
    llm.reset()
    web.searches.clear()
    web.pages.clear()


@pytest.fixture(scope="module")
def descriptions_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``generate descriptions`` run whole (in-process, its own caches), then as the binary killed (SIGKILL) while its
    third LLM call is answered, then run again: what each server saw, and what each run wrote."""
    tmp = tmp_path_factory.mktemp("descriptions")
    (tmp / "guide.html").write_text(GUIDE, encoding="utf-8")
    (tmp / "notes.md").write_text(NOTES, encoding="utf-8")
    seen: dict = {"tmp": tmp, "desc": tmp / "desc"}
    with StandIn(responder=describe, latency=0.5) as llm, SearxngStandIn(results_per_query=2) as web:
        seen["web"] = web.base_url
        assert main([*describe_args(tmp, llm, web, tmp / "whole", tmp / "whole.sqlite"), "--concurrency", "4"]) == 0
        seen["calls"] = llm.n_requests  # 4 sources, one chunk each
        clear(llm, web)
        command = [str(BIN / "culturesafe"), *describe_args(tmp, llm, web, seen["desc"], tmp / "llm.sqlite")]
        child = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300  # start-up is slow on a loaded machine
        # one call at a time: the third is being answered (0.5 s) once it arrived and the first two replies are
        # committed (the cache's writer thread commits each within milliseconds: a reply that arrives in the very
        # moment of a kill is lost, by design, and asked again)
        while (llm.n_requests < 3 or cache_rows(tmp / "llm.sqlite") < 2) and time.monotonic() < deadline:
            if child.poll() is not None:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        seen["killed"] = {"returncode": child.returncode, "answered": set(llm.answered),
                          "cached": cache_rows(tmp / "llm.sqlite"),
                          "searches": sum(web.searches.values()), "pages": sum(web.pages.values()),
                          "wrote_candidates": (tmp / "desc.work" / "candidates.jsonl").exists()}  # fmt: skip
        clear(llm, web)
        rerun = [*command, "--concurrency", "4"]  # (not part of any cache key)
        done = subprocess.run(rerun, env=child_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        seen["resumed"] = {"stdout": done.stdout, "asked": set(llm.counts), "sent": llm.n_requests,
                           "repeated": llm.stats()["repeated"], "searches": sum(web.searches.values()),
                           "pages": sum(web.pages.values())}  # fmt: skip
    return seen


def test_killed_descriptions_run_resumes_without_repeating_a_fetch_or_a_call(descriptions_run: dict) -> None:
    killed, resumed, calls = descriptions_run["killed"], descriptions_run["resumed"], descriptions_run["calls"]
    assert killed["returncode"] == -signal.SIGKILL and 2 <= len(killed["answered"]) == killed["cached"] < calls == 4
    assert killed["searches"] == 1 and killed["pages"] == 2 and not killed["wrote_candidates"]
    assert resumed["searches"] == 0 and resumed["pages"] == 0  # every search and page from the sources cache
    assert not killed["answered"] & resumed["asked"] and resumed["repeated"] == 0  # no answered call asked again
    assert resumed["sent"] == calls - len(killed["answered"])
    assert f"({resumed['sent']} sent, {len(killed['answered'])} cached)" in resumed["stdout"]
    assert "evidence not in source" in resumed["stdout"] and "near-duplicate" in resumed["stdout"]
    tmp = descriptions_run["tmp"]
    assert without_times(tmp / "desc.work") == without_times(tmp / "whole.work")  # as if never killed


@pytest.fixture(scope="module")
def adaculturesafe_bench(descriptions_run: dict) -> dict:
    """The resumed run's descriptions, reviewed -> ``generate adaculturesafe`` -> reviewed: the benchmark folder."""
    tmp, desc = descriptions_run["tmp"], descriptions_run["desc"]
    assert main(["generate", "review-import", "--out", str(desc), "--decisions",
                 str(accept_all(tmp / "desc.work" / "review" / "review.csv"))]) == 0  # fmt: skip
    descriptions = desc / "descriptions.jsonl"
    published = [json.loads(line) for line in descriptions.read_text().splitlines()]
    bench = tmp / "bench"
    with StandIn(responder=respond) as llm:
        args = ["generate", "adaculturesafe", "--descriptions", str(descriptions), "--out", str(bench)]
        args += ["--generator", "openai:w", "--base-url", llm.base_url, "--cache-path", str(tmp / "g.sqlite")]
        args += ["--n-knowledge", "2", "--n-safety", "1", "--no-progress"]
        assert main(args) == 0
    assert main(["generate", "review-import", "--out", str(bench), "--decisions",
                 str(accept_all(tmp / "bench.work" / "review" / "review.csv"))]) == 0  # fmt: skip
    return {"bench": bench, "sources": {r["source"] for r in published}}


SEEDS = [  # classified by the stand-in's keyword classifier, then expanded to 10 per subdomain
    ("s1", "How is the Holi festival celebrated with colours in northern India?"),
    ("s2", "Which dish is cooked for a family meal at Tet in Viet Nam?"),
    ("s3", "What greeting phrase do people use when meeting elders in Thailand?"),
]


@pytest.fixture(scope="module")
def culturax_bench(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Seed questions -> classify -> expand (10 per subdomain) -> references (writer and critic two stand-ins) ->
    review: the CulturaX folder, with what the two models were asked."""
    tmp = tmp_path_factory.mktemp("culturax")
    seeds = tmp / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in SEEDS))
    cache = ["--cache-path", str(tmp / "llm.sqlite"), "--no-progress"]
    with StandIn(responder=stage1) as llm:
        gen = ["--generator", "openai:classifier", "--base-url", llm.base_url, *cache]
        assert main(["generate", "culturax-classify", "--questions", str(seeds), "--out", str(tmp / "cls"),
                     *gen]) == 0  # fmt: skip
        assert main(["generate", "culturax-expand", "--questions", str(tmp / "cls" / "questions.jsonl"),
                     "--target", "10", "--out", str(tmp / "x"), *gen]) == 0  # fmt: skip
    expanded = tmp / "x" / "questions.jsonl"
    out = tmp / "cx"
    with StandIn(responder=write_reference) as writer, StandIn(responder=critic) as judge:
        args = ["generate", "culturax-references", "--questions", str(expanded), "--out", str(out)]
        args += ["--generator", "openai:writer", "--base-url", writer.base_url, "--critic", "openai:critic"]
        args += ["--critic-base-url", judge.base_url, "--candidates", "1", "--concurrency", "64", *cache]
        assert main(args) == 0
        asked = {"writer": writer.n_requests, "critic": judge.n_requests}
    assert main(["generate", "review-import", "--out", str(out), "--decisions",
                 str(accept_all(tmp / "cx.work" / "review" / "review.csv"))]) == 0  # fmt: skip
    return {"out": out, "expanded": len(expanded.read_text().splitlines()), "asked": asked}


@pytest.fixture(scope="module")
def lm_eval_run(adaculturesafe_bench: dict, culturax_bench: dict, tiny_model: Path, tmp_path_factory) -> dict:
    """One ``lm_eval`` run over both generated benchmarks, CulturaX judged by a stand-in HHH judge."""
    tmp = tmp_path_factory.mktemp("lm_eval")
    with StandIn(responder=hhh_responder) as server:
        judge = {"backend": "openai", "model": "standin", "base_url": server.base_url,
                 "cache_path": str(tmp / "judge.sqlite")}  # fmt: skip
        meta = {"culturesafe_data": str(adaculturesafe_bench["bench"]), "culturax_data": str(culturax_bench["out"]),
                "judge": judge}  # fmt: skip
        tasks = ["adaculturesafe_knowledge_thailand", "culturax"]
        return run_lm_eval(lm_eval_args(tiny_model, tasks, meta, limit=2, max_gen_toks=6), tmp)


def test_sources_to_descriptions_to_adaculturesafe_to_lm_eval(adaculturesafe_bench: dict, descriptions_run: dict,
                                                             lm_eval_run: dict) -> None:  # fmt: skip
    sources, tmp = adaculturesafe_bench["sources"], descriptions_run["tmp"]
    assert str(tmp / "guide.html") in sources and any(s.startswith(descriptions_run["web"]) for s in sources)
    card = (adaculturesafe_bench["bench"] / "README.md").read_text()
    assert "## Sources" in card and str(tmp / "guide.html") in card  # provenance in the card
    [samples] = Path(lm_eval_run["_dir"]).glob("samples_adaculturesafe_knowledge_thailand_*.jsonl")
    logged = [json.loads(line) for line in samples.read_text().splitlines()]
    assert logged and {s["doc"]["source"] for s in logged} <= sources  # each row names its source
    assert 0.0 <= lm_eval_run["results"]["adaculturesafe_knowledge_thailand"]["acc,none"] <= 1.0


def test_culturax_stage1_to_lm_eval(culturax_bench: dict, lm_eval_run: dict) -> None:
    assert culturax_bench["expanded"] >= 290
    assert culturax_bench["asked"]["writer"] > 0 and culturax_bench["asked"]["critic"] > 0
    assert "Two-stage rejection sampling" in (culturax_bench["out"] / "README.md").read_text()
    results = lm_eval_run["results"]
    domains = [t for t in results if t.startswith("culturax_")]
    assert len(domains) == 8  # the committed domain tasks, each on the generated test split
    assert all(0.0 <= results[t]["ss,hhh"] <= 1.0 and results[t]["judge_failures,hhh"] == 0 for t in domains)


REFERENCE_ROWS = [  # one rejected once, one never accepted, one accepted at once (K = 2, three goals each)
    ("r1", "How do families REJECTFIRST prepare for Diwali in Gujarat?", 15),
    ("r2", "What is the NEVER proper way to wear a kimono at a summer festival?", 24),
    ("r3", "Which instruments play in a Balinese gamelan orchestra?", 33),
]


def test_killed_references_run_resumes_without_repeating_a_call(tmp_path: Path) -> None:
    """``culturax-references`` killed (SIGKILL) while the critic scores round 0, then run again: every reply
    committed before the kill is served by the cache (writer's and critic's alike), the rest is asked once, and the
    rounds, candidates, scores and critiques are those of an uninterrupted run."""
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": i, "question": q, "subdomain_id": s}) + "\n"
                                 for i, q, s in REFERENCE_ROWS))  # fmt: skip

    def args(writer: StandIn, judge: StandIn, out: Path, cache: Path) -> list[str]:
        return ["generate", "culturax-references", "--questions", str(questions), "--out", str(out),
                "--generator", "openai:writer", "--base-url", writer.base_url, "--critic", "openai:critic",
                "--critic-base-url", judge.base_url, "--candidates", "2", "--cache-path", str(cache),
                "--concurrency", "1", "--no-progress"]  # fmt: skip

    with StandIn(responder=write_reference) as writer, StandIn(responder=critic, latency=0.2) as judge:
        assert main([*args(writer, judge, tmp_path / "whole", tmp_path / "whole.sqlite"), "--concurrency", "8"]) == 0
        total = writer.n_requests + judge.n_requests  # 36 candidates over three rounds, each scored
        critic_total = judge.n_requests  # (the same answer twice is scored once)
        writer.reset()
        judge.reset()
        cache = tmp_path / "llm.sqlite"
        command = [str(BIN / "culturesafe"), *args(writer, judge, tmp_path / "cx", cache)]
        child = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        # the critic's fifth request is being answered (0.2 s, one at a time) and every earlier reply is committed
        while judge.n_requests < 5 or cache_rows(cache) < writer.stats()["n_answered"] + judge.stats()["n_answered"]:
            if child.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait()
        committed = cache_rows(cache)
        answered = writer.stats()["n_answered"] + judge.stats()["n_answered"]
        assert child.returncode == -signal.SIGKILL and committed == answered and 18 < answered < total
        writer.reset()
        judge.reset()
        done = subprocess.run([*command, "--concurrency", "8"], env=child_env(), capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert writer.n_requests + judge.n_requests == total - committed  # nothing committed is asked again
        # round 0's 18 candidates and the critic's scores before the kill came from the cache
        assert judge.n_requests == critic_total - (answered - 18)
        assert f"writer {writer.n_requests} sent / 18 cached, critic {judge.n_requests} sent" in done.stdout
    logs = [(tmp_path / f"{name}.work" / "rejection_sampling.jsonl").read_text() for name in ("cx", "whole")]
    assert logs[0] == logs[1] and len(logs[0].splitlines()) == 36
    assert without_times(tmp_path / "cx.work") == without_times(tmp_path / "whole.work")
