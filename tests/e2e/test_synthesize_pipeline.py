"""CultureManager end to end through the real CLIs: ``culturesafe synthesize`` -> ``culturesafe train adapters
--items`` -> ``culturesafe train router --items`` -> ``lm_eval --model hf-router`` on the held-out evaluation task.

Offline: search is a local bm25 corpus or the SearXNG-shaped stand-in on 127.0.0.1, the generator the scripted
OpenAI stand-in, the model a tiny random one (``--max-steps 1``): these tests show the plumbing and the
bookkeeping (formats, routes, manifests, leakage, caches), not that the adapters learn anything.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from support.lm_eval_run import BIN, child_env, culturesafe, run_lm_eval
from support.openai_standin import StandIn
from support.scripted_synthesizer import respond
from support.searxng_standin import SearxngStandIn
from support.synth_task import TASK, TEST, write_corpus, write_task

from culturesafe_ext.data.splits import TRAINING_MANIFEST

KEY = {"CULTURESAFE_JUDGE_API_KEY": "sk-test"}
KNOWLEDGE_EXAMPLES = [
    {
        "id": "ex1",
        "description_id": "ex/1",
        "country": "China",
        "question": "What do older relatives traditionally give children at the Spring Festival?",
        "options": ["Red envelopes with money", "Umbrellas", "Clocks", "White flowers"],
        "gold_index": 0,
        "gold_letter": "A",
    },
    {
        "id": "ex2",
        "description_id": "ex/2",
        "country": "China",
        "question": "Which gift is avoided because its name sounds like a funeral rite?",
        "options": ["Tea", "A clock", "Fruit", "A scarf"],
        "gold_index": 1,
        "gold_letter": "B",
    },
]


def synth_command(tmp: Path, llm_url: str, search: str, out: Path, *extra: str) -> list[str]:
    return [
        "synthesize",
        "--llm",
        "openai:standin",
        "--base-url",
        llm_url,
        "--search",
        search,
        "--out",
        str(out),
        "--cache-path",
        str(tmp / "llm.sqlite"),
        "--sources-cache",
        str(tmp / "sources.sqlite"),
        "--n-specific",
        "2",
        "--n-agnostic",
        "2",
        "--no-progress",
        *extra,
    ]


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def train_adapters(tiny_model: Path, items: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return ok(
        culturesafe(
            "train", "adapters", "--base", tiny_model, "--items", items, "--out", out,
            "--max-steps", "1", "--batch-size", "2", *extra,
        )
    )  # fmt: skip


def test_yaml_task_synthesize_train_route_evaluate(tiny_model: Path, tmp_path: Path) -> None:
    """A non-culturesafe task: examples from its train split, evaluation on its test split, learned routing."""
    task_dir = write_task(tmp_path / "task")
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    synth = tmp_path / "synth"
    with StandIn(responder=respond) as server:
        command = synth_command(tmp_path, server.base_url, f"bm25:{corpus}", synth, "--k", "4")
        command += ["--task", TASK, "--include-path", str(task_dir), "--culture", "Japan", "--culture", "Thailand"]
        done = ok(culturesafe(*command, env=KEY))
    assert "0 leaked in output" in done.stdout

    adapters = tmp_path / "adapters"
    trained = train_adapters(tiny_model, synth, adapters)
    assert "adapter japan" in trained.stderr and "adapter thailand" in trained.stderr  # one bar per culture
    assert "1/1" in trained.stderr and "{'loss'" not in trained.stdout + trained.stderr  # steps, no raw lines
    manifest = json.loads((adapters / "japan" / TRAINING_MANIFEST).read_text())
    assert manifest["items"] == str(synth) and manifest["target_task"] == TASK
    assert manifest["trained_descriptions"] == [] and manifest["all_cultures"] is False
    assert manifest["synthesis"]["leaked_in_output"] == 0 and set(manifest["items_by_kind"]) <= {"specific", "agnostic"}
    assert sum(manifest["items_by_kind"].values()) == manifest["n_items"] > 0

    router = tmp_path / "router"
    ok(culturesafe("train", "router", "--base", tiny_model, "--items", synth, "--out", router))
    evaluation = json.loads((router / "router_eval.json").read_text())
    assert evaluation["heldout"] == f"evaluation prompts of {TASK}" and evaluation["n_heldout"] == len(TEST)
    assert evaluation["labels"] == ["japan", "thailand"] and evaluation["by_kind"]["evaluation"]["n"] == len(TEST)

    model_args = f"pretrained={tiny_model},adapters={adapters},router={router},routing=learned"
    run = run_lm_eval(
        ["--model", "hf-router", "--model_args", model_args, "--tasks", TASK, "--include_path", str(task_dir),
         "--batch_size", "4"],
        tmp_path,
    )  # fmt: skip
    assert 0.0 <= run["results"][TASK]["acc,none"] <= 1.0
    assert sum(run["config"]["route_counts"].values()) == len(TEST) * 2  # 4 docs x 2 choices, every one routed
    assert set(run["config"]["route_counts"]) <= {"japan", "thailand"}


def test_knowledge_task_all_cultures_and_init_from(tiny_model: Path, tmp_path: Path) -> None:
    """Our knowledge task (no non-evaluated split: --examples), SearXNG search, one adapter for all cultures,
    then adaptation from it (--init-from), evaluated with every request routed to the one adapter."""
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(d) + "\n" for d in KNOWLEDGE_EXAMPLES), encoding="utf-8")
    synth = tmp_path / "synth"
    metadata = json.dumps({"culturesafe_data": "bundled"})
    with StandIn(responder=respond) as server, SearxngStandIn() as search:
        command = synth_command(tmp_path, server.base_url, f"searxng:{search.base_url}", synth)
        command += ["--task", "adaculturesafe_knowledge_china", "--metadata", metadata, "--examples", str(examples)]
        command += ["--culture", "China", "--culture", "India"]
        ok(culturesafe(*command, env=KEY))
    report = json.loads((synth / "synthesis_report.json").read_text())
    assert report["task"]["examples_from"] == str(examples) and report["counts"]["per_backend"] == {
        "searxng": report["items"]
    }
    assert all(domain == "127.0.0.1" for domain in report["counts"]["source_domains"])
    golds = [json.loads(line)["completion"] for line in (synth / "items.jsonl").read_text().splitlines()]
    letters = [json.loads(line)["doc"]["gold_letter"] for line in (synth / "items.jsonl").read_text().splitlines()]
    assert max(letters.count(x) for x in "ABCD") - min(letters.count(x) for x in "ABCD") <= 1  # balance_gold
    assert all(g.startswith(" ") for g in golds)

    every = tmp_path / "adapters_all"
    train_adapters(tiny_model, synth, every, "--all-cultures")
    assert sorted(p.name for p in every.iterdir() if p.is_dir()) == ["all"]
    assert json.loads((every / "all" / TRAINING_MANIFEST).read_text())["all_cultures"] is True
    adapted = tmp_path / "adapters_adapted"
    train_adapters(tiny_model, synth, adapted, "--init-from", str(every))
    manifest = json.loads((adapted / "china" / TRAINING_MANIFEST).read_text())
    assert manifest["init_from"] == str(every / "all")

    model_args = f"pretrained={tiny_model},adapters={every},routing=fixed:all"
    run = run_lm_eval(
        ["--model", "hf-router", "--model_args", model_args, "--tasks", "adaculturesafe_knowledge_china",
         "--metadata", metadata, "--limit", "3", "--batch_size", "4", "--log_samples"],
        tmp_path,
    )  # fmt: skip
    assert run["config"]["route_counts"] == {"all": 3 * 4}
    # the run is a column of the routing comparison beside base / fixed / learned / oracle runs
    compare = tmp_path / "routing_compare.json"
    ok(culturesafe("analyze", "routing", "--run", f"synth-all={tmp_path / 'lm_eval_out'}", "--out", compare))
    table = json.loads(compare.read_text())["table"]
    assert "synth-all" in next(iter(next(iter(table.values())).values()))


def test_killed_synthesis_resumes_without_repeating(tmp_path: Path) -> None:
    """SIGKILL in the middle of the docs stage; the re-run repeats no search, no page and no answered LLM call."""
    task_dir = write_task(tmp_path / "task")
    out = tmp_path / "synth"
    with StandIn(responder=respond, latency=0.5) as server, SearxngStandIn() as search:
        command = synth_command(tmp_path, server.base_url, f"searxng:{search.base_url}", out, "--concurrency", "1")
        command += ["--task", TASK, "--include-path", str(task_dir), "--culture", "Japan", "--culture", "Thailand"]
        env = child_env({**KEY, "CULTURESAFE_CACHE_DIR": str(tmp_path / "cache")})
        child = subprocess.Popen([str(BIN / "culturesafe"), *command], env=env, stdout=subprocess.PIPE, text=True)
        queries_stage = 4  # 2 cultures x (specific, agnostic)
        deadline = time.monotonic() + 300
        while server.n_requests < queries_stage + 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)  # the third docs request is being answered (0.5 s): it never arrives
        child.wait()
        answered = set(server.answered)
        searches_before, pages_before = sum(search.searches.values()), sum(search.pages.values())
        assert child.returncode == -signal.SIGKILL and len(answered) == queries_stage + 2
        assert not out.exists()
        server.reset()
        search.searches.clear()
        search.pages.clear()
        done = ok(subprocess.run([str(BIN / "culturesafe"), *command], env=env, capture_output=True, text=True))
        assert sum(search.searches.values()) == 0 and sum(search.pages.values()) == 0  # every search from the cache
        assert searches_before > 0 and pages_before > 0
        assert not answered & set(server.counts)  # no LLM call answered before the kill is sent again
        assert server.stats()["repeated"] == 0
        report = json.loads((out / "synthesis_report.json").read_text())
        stages = report["stages"]
        assert stages["queries"]["stats"]["sent"] == 0 and stages["docs"]["stats"]["cached"] == 2
        assert "0 leaked in output" in done.stdout
        server.reset()
        ok(subprocess.run([str(BIN / "culturesafe"), *command], env=env, capture_output=True, text=True))
        assert server.n_requests == 0  # a third run sends nothing
