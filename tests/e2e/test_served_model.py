"""Served models: every task family through lm-eval's ``local-completions`` / ``local-chat-completions``
against a vLLM-shaped server on 127.0.0.1 (tests/support/served_model_standin.py), the judge on a second
server. The served numbers are computed by the same tiny model the ``hf`` run loads, so they must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lm_eval_run import run_lm_eval
from support.openai_standin import StandIn
from support.served_model_standin import ServedModel, judge_verdicts

KNOWLEDGE = "adaculturesafe_knowledge_china,adaculturesafe_knowledge_circular_china,adaculturesafe_knowledge_gen_china"
LIMIT = 4  # the circular task needs all 4 rotations of a question


def samples(run: dict, task: str) -> list[dict]:
    [path] = Path(run["_dir"]).glob(f"samples_{task}_*.jsonl")
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["doc_id"])


def knowledge_args(model: str, model_args: str) -> list[str]:
    return [
        "--model", model, "--model_args", model_args, "--tasks", KNOWLEDGE, "--limit", str(LIMIT),
        "--metadata", json.dumps({"culturesafe_data": "bundled"}), "--gen_kwargs", "max_gen_toks=8",
        "--log_samples",
    ]  # fmt: skip


def test_completions_loglikelihood_and_generation_equal_the_local_hf_run(tiny_model: Path, tmp_path: Path) -> None:
    """``local-completions`` (loglikelihood from echo + logprobs, token ids sent) scores every option and
    generates exactly what ``hf`` computes with the same weights."""
    with ServedModel(tiny_model) as server:
        url = f"{server.base_url}/completions"
        served = run_lm_eval(
            knowledge_args("local-completions", f"model=tiny,base_url={url},tokenizer={tiny_model},"
                           "tokenizer_backend=huggingface"),
            tmp_path / "served",
        )  # fmt: skip
        counts = dict(server.counts)
    local = run_lm_eval(knowledge_args("hf", f"pretrained={tiny_model},dtype=float32"), tmp_path / "hf")
    assert counts["completions:logprobs"] > 0 and counts["completions:generate"] == LIMIT
    for task in KNOWLEDGE.split(","):
        rows_served, rows_local = samples(served, task), samples(local, task)
        assert [r["doc_hash"] for r in rows_served] == [r["doc_hash"] for r in rows_local]
        for a, b in zip(rows_served, rows_local, strict=True):
            if task.endswith("_gen_china"):
                assert a["resps"] == b["resps"]  # the same greedy text, cut at the same stop sequence
                continue
            for (ll_a, greedy_a), (ll_b, greedy_b) in zip(
                [r[0] for r in a["resps"]], [r[0] for r in b["resps"]], strict=True
            ):
                # lm-eval logs an API model's loglikelihood as a string (the sum it parsed), hf's as a float
                assert float(ll_a) == pytest.approx(float(ll_b), abs=1e-3) and str(greedy_a) == str(greedy_b)
        for metric, value in local["results"][task].items():
            if metric != "alias" and "stderr" not in metric:
                assert served["results"][task][metric] == pytest.approx(value, abs=1e-9, nan_ok=True), (task, metric)


def test_chat_completions_generate_for_safety_and_culturax_judged_by_a_second_server(
    tiny_model: Path, tmp_path: Path
) -> None:
    """``local-chat-completions`` answers; the judge is another OpenAI-compatible server. CulturaX's three
    sampled runs are three draws only when the request carries no fixed seed (``--gen_kwargs seed=None``)."""
    tasks = ",".join(
        ["adaculturesafe_knowledge_gen_china", "adaculturesafe_safety_china", "culturax_greedy_books_and_press",
         "culturax_books_and_press"]
    )  # fmt: skip
    with ServedModel(tiny_model) as server, StandIn(responder=judge_verdicts) as judge:
        meta = {
            "culturesafe_data": "bundled",
            "culturax_data": "bundled",
            "judge": {"backend": "openai", "model": "judge", "base_url": judge.base_url,
                      "cache_path": str(tmp_path / "judge.sqlite")},
        }  # fmt: skip
        run = run_lm_eval(
            [
                "--model", "local-chat-completions",
                "--model_args", f"model=tiny,base_url={server.base_url}/chat/completions",
                "--apply_chat_template", "--tasks", tasks, "--limit", str(LIMIT),
                "--metadata", json.dumps(meta), "--gen_kwargs", "max_gen_toks=8,seed=None", "--log_samples",
            ],
            tmp_path,
        )  # fmt: skip
        generations, seeds, counts = list(server.generations), list(server.seeds), dict(server.counts)
        judged = judge.stats()["n_answered"]
    results = run["results"]
    assert set(seeds) == {None}  # --gen_kwargs seed=None replaced lm-eval's fixed seed=1234 in every request
    logged = [text for t in tasks.split(",") for row in samples(run, t) for resps in row["resps"] for text in resps]
    assert sorted(logged) == sorted(generations)  # every served answer is in the samples, each once
    safety = results["adaculturesafe_safety_china"]
    assert safety["n_judged,judge"] == 2 * LIMIT and safety["judge_failures,judge"] == 0
    assert 1 <= safety["respectfulness,judge"] <= 10
    for task in ("culturax_greedy_books_and_press", "culturax_books_and_press"):
        assert results[task]["judge_failures,hhh"] == 0 and 0 <= results[task]["wr,hhh"] <= 1
    sampled = samples(run, "culturax_books_and_press")
    assert all(len(row["resps"][0]) == 3 for row in sampled)
    assert any(len(set(row["resps"][0])) > 1 for row in sampled)  # three draws, not one answer three times
    n_greedy = len(samples(run, "culturax_greedy_books_and_press"))
    assert counts == {"chat": 2 * LIMIT + n_greedy + 3 * len(sampled)}  # the model server only answered
    assert judged >= 2 * LIMIT + 3 * n_greedy  # and the judgements went to the judge server
