"""CultureManager end to end through the real CLIs: ``culturesafe synthesize`` -> ``culturesafe train adapters
--items`` -> ``culturesafe train router --items`` -> ``lm_eval --model hf-router`` on the held-out evaluation task.

Offline: search is the SearXNG-shaped stand-in on 127.0.0.1 (the local bm25 corpus is the fast lane's,
tests/builders/test_synthesize.py), the generator the scripted OpenAI stand-in, the model a tiny random one
(``--max-steps 1``): these tests show the plumbing and the bookkeeping (formats, routes, manifests, leakage, caches),
not that the adapters learn anything. Three synthesis runs in all, each used twice: the YAML task's killed and
resumed run is also what its pipeline trains on; our knowledge and safety tasks share one training chain and one
lm_eval run.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from support.lm_eval_run import BIN, child_env, culturesafe, run_lm_eval, samples
from support.openai_standin import StandIn
from support.scripted_synthesizer import respond
from support.searxng_standin import SearxngStandIn
from support.synth_task import SAFETY_EXAMPLES, TASK, TEST, write_task

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
QUERIES_STAGE = 4  # LLM requests of the YAML task's queries stage: 2 cultures x (specific, agnostic)


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


def _cached(path: Path) -> dict[str, int]:
    """Entries of the sources cache by kind (search, page), read as another process would."""
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT kind, COUNT(*) FROM entries GROUP BY kind").fetchall())
    finally:
        db.close()


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The YAML task through SearXNG: SIGKILL in the middle of the docs stage (one request at a time, the third
    docs request being answered), the resumed run (all at once), a third run; what each sent. The resumed folder is
    also the YAML pipeline's training data."""
    tmp = tmp_path_factory.mktemp("killed")
    task_dir = write_task(tmp / "task")
    out = tmp / "synth"
    facts: dict = {"out": out, "task_dir": task_dir}
    with StandIn(responder=respond, latency=0.5) as server, SearxngStandIn() as search:
        command = synth_command(tmp, server.base_url, f"searxng:{search.base_url}", out)
        command += ["--task", TASK, "--include-path", str(task_dir), "--culture", "Japan", "--culture", "Thailand"]
        env = child_env({**KEY, "CULTURESAFE_CACHE_DIR": str(tmp / "cache")})
        child = subprocess.Popen(
            [str(BIN / "culturesafe"), *command, "--concurrency", "1"], env=env, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 300
        while server.n_requests < QUERIES_STAGE + 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)  # the third docs request is being answered (0.5 s): it never arrives
        child.wait()
        facts["returncode"], facts["answered"] = child.returncode, set(server.answered)
        facts["searched"], facts["fetched"] = sum(search.searches.values()), sum(search.pages.values())
        facts["cached_before"] = _cached(tmp / "sources.sqlite")  # what the killed run stored
        facts["out_after_kill"] = out.exists()
        server.reset()
        search.searches.clear()
        search.pages.clear()
        done = subprocess.run([str(BIN / "culturesafe"), *command], env=env, capture_output=True, text=True)
        facts["resumed"] = ok(done)
        facts["report"] = json.loads((out / "synthesis_report.json").read_text())  # the third run writes its own
        facts["resent"], facts["repeated"] = set(server.counts), server.stats()["repeated"]
        facts["searched_again"], facts["fetched_again"] = sum(search.searches.values()), sum(search.pages.values())
        server.reset()
        ok(subprocess.run([str(BIN / "culturesafe"), *command], env=env, capture_output=True, text=True))
        facts["third_run_requests"] = server.n_requests + search.n_requests
    return facts


def test_killed_synthesis_resumes_without_repeating(killed_and_resumed: dict) -> None:
    """The re-run repeats no answered LLM call and no search or page the killed run stored; a third run sends
    nothing. (Retrieval and the docs' first requests overlap, so the kill may land before every page is in.)"""
    facts = killed_and_resumed
    assert facts["returncode"] == -signal.SIGKILL and len(facts["answered"]) == QUERIES_STAGE + 2
    assert not facts["out_after_kill"] and facts["searched"] > 0 and facts["fetched"] > 0
    assert not facts["answered"] & facts["resent"] and facts["repeated"] == 0  # no answered LLM call sent again
    retrieval, stages = facts["report"]["retrieval"], facts["report"]["stages"]
    cached = facts["cached_before"]
    assert retrieval["searches_cached"] == cached.get("search", 0) > 0  # every stored search from the cache ...
    assert retrieval["pages_cached"] == cached.get("page", 0) > 0
    assert facts["searched_again"] == retrieval["searches_sent"]  # ... and only the others asked for
    assert facts["fetched_again"] == retrieval["pages_fetched"]
    assert stages["queries"]["stats"]["sent"] == 0 and stages["docs"]["stats"]["cached"] == 2
    assert "0 leaked in output" in facts["resumed"].stdout
    assert facts["third_run_requests"] == 0  # a third run sends nothing


def test_yaml_task_synthesize_train_route_evaluate(tiny_model: Path, killed_and_resumed: dict, tmp_path: Path) -> None:
    """A non-culturesafe task: examples from its train split, evaluation on its test split, learned routing; trained
    on the killed-and-resumed synthesis (SearXNG stand-in)."""
    synth, task_dir = killed_and_resumed["out"], killed_and_resumed["task_dir"]

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


def test_knowledge_and_safety_tasks_all_cultures_and_init_from(tiny_model: Path, tmp_path: Path) -> None:
    """Our knowledge and safety tasks (no non-evaluated split: --examples), SearXNG search: one adapter for all
    cultures on the knowledge items, then each culture adapted from it on the safety items (--init-from; the
    completions are model-written grounded answers), evaluated on both tasks in one lm_eval run."""
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(d) + "\n" for d in KNOWLEDGE_EXAMPLES), encoding="utf-8")
    safety_examples = tmp_path / "safety_examples.jsonl"
    safety_examples.write_text("".join(json.dumps(d) + "\n" for d in SAFETY_EXAMPLES), encoding="utf-8")
    synth, safety = tmp_path / "synth", tmp_path / "safety"
    metadata = json.dumps({"culturesafe_data": "bundled", "judge": {"backend": "none"}})
    with StandIn(responder=respond) as server, SearxngStandIn() as search:
        command = synth_command(tmp_path, server.base_url, f"searxng:{search.base_url}", synth)
        command += ["--task", "adaculturesafe_knowledge_china", "--metadata", metadata, "--examples", str(examples)]
        command += ["--culture", "China", "--culture", "India"]
        ok(culturesafe(*command, env=KEY))
        command = synth_command(tmp_path, server.base_url, f"searxng:{search.base_url}", safety)
        command += ["--task", "adaculturesafe_safety_china", "--metadata", metadata, "--examples", str(safety_examples)]
        command += ["--culture", "China", "--k", "2"]
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
    safety_report = json.loads((safety / "synthesis_report.json").read_text())
    assert safety_report["completions"] == "model-written answers" and safety_report["items"] > 0
    answers = [json.loads(line) for line in (safety / "items.jsonl").read_text().splitlines()]
    assert all(a["completion"].startswith(" In China, ") and a["answer_evidence"] for a in answers)

    every = tmp_path / "adapters_all"
    train_adapters(tiny_model, synth, every, "--all-cultures")
    assert sorted(p.name for p in every.iterdir() if p.is_dir()) == ["all"]
    assert json.loads((every / "all" / TRAINING_MANIFEST).read_text())["all_cultures"] is True
    adapted = tmp_path / "adapters_adapted"
    train_adapters(tiny_model, safety, adapted, "--init-from", str(every))
    assert sorted(p.name for p in adapted.iterdir() if p.is_dir()) == ["china"]
    manifest = json.loads((adapted / "china" / TRAINING_MANIFEST).read_text())
    assert manifest["init_from"] == str(every / "all") and manifest["target_task"] == "adaculturesafe_safety_china"
    assert manifest["n_items"] == len(answers) and manifest["synthesis"]["leaked_in_output"] == 0

    model_args = f"pretrained={tiny_model},adapters={adapted},routing=fixed:china"
    tasks = "adaculturesafe_knowledge_china,adaculturesafe_safety_china"
    run = run_lm_eval(
        ["--model", "hf-router", "--model_args", model_args, "--tasks", tasks, "--metadata", metadata,
         "--limit", "3", "--batch_size", "4", "--gen_kwargs", "max_gen_toks=4", "--log_samples"],
        tmp_path,
    )  # fmt: skip
    assert run["config"]["route_counts"] == {"china": 3 * 4 + 3}  # 3 MCQs x 4 options + 3 safety answers
    assert len(samples(run, "adaculturesafe_safety_china")) == 3
    # the run is a column of the routing comparison beside base / fixed / learned / oracle runs
    compare = tmp_path / "routing_compare.json"
    ok(culturesafe("analyze", "routing", "--run", f"synth-adapted={tmp_path / 'lm_eval_out'}", "--out", compare))
    table = json.loads(compare.read_text())["table"]
    assert "synth-adapted" in next(iter(next(iter(table.values())).values()))
