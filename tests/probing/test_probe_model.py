"""``hf-probe``: finds a planted neuron on the right layer, never counts pads, and keeps O(layers x width)
statistics that do not depend on how documents are batched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:  # the heavy imports happen inside the tests: the fast lane's collection stays light
    import torch
    from lm_eval.api.instance import Instance

    from culturesafe_ext.models.probe import ProbeHFLM

WORD = " tea"
LAYER, NEURON = 1, 7
OPTIONS = [" yes", " no, it is not", " maybe"]


def prompts(n: int) -> list[str]:
    """Prompts of different lengths (so batches pad), the planted word in every third one, twice in some."""
    out = []
    for i in range(n):
        word = "tea" if i % 3 == 0 else "rice"
        extra = "served hot " * (i % 4) + "polite" + " with tea" * (i % 6 == 0)
        out.append(f"Q{i}: in country {i}, is {word} {extra}?\nA:")
    return out


def mc_requests(texts: list[str], task: str = "task_mc") -> list[Instance]:
    from lm_eval.api.instance import Instance

    return [
        Instance("loglikelihood", {"q": text}, (text, option), j, (task, d, 1))
        for d, text in enumerate(texts)
        for j, option in enumerate(OPTIONS)
    ]


def gen_requests(texts: list[str], task: str = "task_gen", max_gen_toks: int = 5) -> list[Instance]:
    from lm_eval.api.instance import Instance

    kwargs = {"until": ["\n"], "max_gen_toks": max_gen_toks, "do_sample": False}
    return [Instance("generate_until", {"q": t}, (t, dict(kwargs)), 0, (task, d, 1)) for d, t in enumerate(texts)]


def plant(model: torch.nn.Module, token: int) -> None:
    """Make neuron NEURON of layer LAYER fire (strongly) on ``token`` only: the token's embedding gets a
    private residual dimension 0 that nothing else writes to, and the neuron reads only that dimension."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[:, 0] = 0.0
        emb[token, 0] = 10.0
        if isinstance(model, LlamaForCausalLM):
            for block in model.model.layers:
                block.self_attn.o_proj.weight[0] = 0.0
                block.mlp.down_proj.weight[0] = 0.0
            mlp = model.model.layers[LAYER].mlp
            for proj in (mlp.gate_proj, mlp.up_proj):
                proj.weight[NEURON] = 0.0
                proj.weight[NEURON, 0] = 4.0
        else:  # GPT-2: Conv1D weights are [in, out]
            model.transformer.wpe.weight[:, 0] = 0.0
            for block in model.transformer.h:
                for proj in (block.attn.c_proj, block.mlp.c_proj):
                    proj.weight[:, 0] = 0.0
                    proj.bias[0] = 0.0
            fc = model.transformer.h[LAYER].mlp.c_fc
            fc.weight[:, NEURON] = 0.0
            fc.weight[0, NEURON] = 4.0
            fc.bias[NEURON] = -2.0


@pytest.fixture(scope="module")
def tokenizer_dir(demo_model: Path) -> Path:
    return demo_model


@pytest.fixture(scope="module")
def word_id(tokenizer_dir: Path) -> int:
    from transformers import AutoTokenizer

    [token] = AutoTokenizer.from_pretrained(tokenizer_dir).encode(WORD, add_special_tokens=False)
    return token


def tiny(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path, word_id: int, layout: str) -> Path:
    import torch
    from support.tiny_models import tiny_causal_lm
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = tiny_causal_lm(tokenizer, layout, max_positions=512)
    plant(model, word_id)
    folder = tmp_path_factory.mktemp(layout) / f"planted-{layout}"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def planted_llama(tmp_path_factory, tokenizer_dir, word_id) -> Path:
    return tiny(tmp_path_factory, tokenizer_dir, word_id, "llama")


@pytest.fixture(scope="module")
def planted_gpt2(tmp_path_factory, tokenizer_dir, word_id) -> Path:
    return tiny(tmp_path_factory, tokenizer_dir, word_id, "gpt2")


def probe(folder: Path, out: Path, batch_size: int = 4, **kwargs) -> ProbeHFLM:
    from culturesafe_ext.models.probe import ProbeHFLM

    kwargs.setdefault("probe_topk", 1)
    return ProbeHFLM(
        pretrained=str(folder),
        device="cpu",
        dtype="float32",
        batch_size=batch_size,
        probe_out=str(out),
        **kwargs,
    )


def prompt_tokens(lm: ProbeHFLM, texts: list[str]) -> list[list[int]]:
    return [lm.tok_encode(t) for t in texts]


@pytest.mark.parametrize("layout", ["llama", "gpt2"])
def test_planted_neuron_found_on_its_layer(layout: str, planted_llama, planted_gpt2, word_id, tmp_path) -> None:
    from culturesafe_ext.probing.stats_file import load_stats

    folder = planted_llama if layout == "llama" else planted_gpt2
    texts = prompts(9)
    lm = probe(folder, tmp_path)
    lm.loglikelihood(mc_requests(texts) + mc_requests([t.replace("tea", "rice") for t in texts], task="task_no"))
    stats = load_stats(tmp_path / "task_mc.npz")
    mean = stats.mean()
    assert mean.shape == (2, 64)
    assert int(mean[LAYER].argmax()) == NEURON
    assert mean[LAYER, NEURON] > 10 * np.sort(np.abs(mean[LAYER]))[-2]
    assert int(mean[0].argmax()) != NEURON or mean[0].max() < 0.1 * mean[LAYER, NEURON]
    occurrences = sum(ids.count(word_id) for ids in prompt_tokens(lm, texts))
    count = stats.topk_count[LAYER, :, NEURON].sum()
    control = load_stats(tmp_path / "task_no.npz").topk_count[LAYER, :, NEURON].sum()
    if layout == "llama":  # the neuron is exactly 0 elsewhere: top-1 exactly on the planted token
        assert count == occurrences and control == 0
    else:
        assert count >= occurrences > control


def test_pads_never_count_and_each_prompt_once(planted_llama, tmp_path) -> None:
    texts = prompts(7)
    lm = probe(planted_llama, tmp_path, batch_size=3)
    lm.loglikelihood(mc_requests(texts))
    lm.generate_until(gen_requests(texts))
    lengths = sum(len(ids) for ids in prompt_tokens(lm, texts))
    assert int(lm._stats["task_mc"].tokens.sum()) == lengths  # right-padded rows, 3 options per prompt
    assert int(lm._stats["task_gen"].tokens.sum()) == lengths  # left-padded generation batches
    meta = json.loads((tmp_path / "task_mc.json").read_text())
    assert (meta["n_docs"], meta["n_tokens"], meta["layers"]) == (
        7,
        lengths,
        ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"],
    )
    summary = json.loads((tmp_path / "probe_stats.json").read_text())
    assert set(summary["tasks"]) == {"task_mc", "task_gen"}


def test_generated_scope_counts_the_answer_positions(planted_llama, tmp_path) -> None:
    texts = prompts(5)
    lm = probe(planted_llama, tmp_path, batch_size=2, probe_tokens="generated")
    lm.loglikelihood(mc_requests(texts))
    answers = lm.generate_until(gen_requests(texts, max_gen_toks=4))
    # loglikelihood: one position per continuation token, the two one-token options share their row
    per_doc = sum(len(lm.tok_encode(o, add_special_tokens=False)) for o in OPTIONS[1:2]) + 1
    assert int(lm._stats["task_mc"].tokens.sum()) == per_doc * len(texts)
    expected = sum(lm._kept_length(lm.tok_encode(a, add_special_tokens=False), ["\n"]) for a in answers)
    assert 0 < int(lm._stats["task_gen"].tokens.sum()) == expected <= 4 * len(texts)


def test_rolling_loglikelihood_is_recorded_per_task(planted_llama, tmp_path) -> None:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    texts = prompts(4)
    rolling = [Instance("loglikelihood_rolling", {}, (t,), 0, (f"ppl_{d % 2}", d, 1)) for d, t in enumerate(texts)]
    lm = probe(planted_llama, tmp_path, probe_tokens="generated")  # a perplexity text is all continuation
    plain = HFLM(pretrained=str(planted_llama), device="cpu", dtype="float32", batch_size=4)
    assert lm.loglikelihood_rolling(rolling) == plain.loglikelihood_rolling(rolling)
    lengths = [len(lm.tok_encode(t)) for t in texts]
    assert {t: int(s.tokens.sum()) for t, s in lm._stats.items()} == {
        "ppl_0": lengths[0] + lengths[2],
        "ppl_1": lengths[1] + lengths[3],
    }


def test_kept_length_stops_before_the_stop_sequence(planted_llama, tmp_path) -> None:
    lm = probe(planted_llama, tmp_path)
    answer = lm.tok_encode('{"answer": "B"}', add_special_tokens=False)
    rest = lm.tok_encode("\n\nmore text", add_special_tokens=False)
    assert lm._kept_length(answer + rest, ["\n\n"]) == len(answer)
    assert lm._kept_length(rest, ["\n\n"]) == 0
    assert lm._kept_length(answer, ["\n\n"]) == len(answer)


def test_same_statistics_in_one_batch_or_many(planted_llama, tmp_path) -> None:
    import torch

    texts = prompts(6)
    runs = {}
    for batch_size in (18, 4):  # 18: every request of a type in one batch; 4: several batches
        for scope in ("prompt", "generated"):
            lm = probe(
                planted_llama,
                tmp_path / f"{scope}{batch_size}",
                batch_size=batch_size,
                probe_tokens=scope,
                probe_topk=5,
            )
            scores = lm.loglikelihood(mc_requests(texts))
            lm.generate_until(gen_requests(texts, max_gen_toks=3))
            runs[batch_size, scope] = scores, lm._stats
    for batch_size in (4,):
        for scope in ("prompt", "generated"):
            one, many = runs[18, scope][1], runs[batch_size, scope][1]
            for task in ("task_mc", "task_gen"):
                assert torch.equal(one[task].tokens, many[task].tokens), (scope, task)
                assert torch.equal(one[task].topk_count, many[task].topk_count), (scope, task)
                # equal up to the model's own float32 output, which can move by one rounding step with the
                # batch shape (padding, kernel blocking); the accumulation adds nothing (next test)
                torch.testing.assert_close(one[task].act_sum, many[task].act_sum, rtol=0, atol=1e-6)


def test_outputs_identical_to_hf_with_tasks_mixed_in_one_call(planted_llama, tmp_path) -> None:
    import torch
    from lm_eval.models.huggingface import HFLM

    texts = prompts(6)
    mc = [r for pair in zip(mc_requests(texts, "a"), mc_requests(texts[::-1], "b"), strict=True) for r in pair]
    gen = gen_requests(texts, "g1") + gen_requests(texts[:3], "g2")  # g2 repeats three prompts of g1
    plain = HFLM(pretrained=str(planted_llama), device="cpu", dtype="float32", batch_size=4)
    lm = probe(planted_llama, tmp_path, batch_size=4)
    assert lm.loglikelihood(mc) == plain.loglikelihood(mc)
    assert lm.generate_until(gen) == plain.generate_until(gen)
    tokens = {task: int(stats.tokens.sum()) for task, stats in lm._stats.items()}
    lengths = [len(ids) for ids in prompt_tokens(lm, texts)]
    assert tokens == {"a": sum(lengths), "b": sum(lengths), "g1": sum(lengths), "g2": sum(lengths[:3])}
    assert torch.equal(lm._stats["a"].act_sum.sum(1), lm._stats["b"].act_sum.sum(1))


def test_accumulation_is_exact_in_any_order() -> None:
    """The accumulator itself: the same token activations, in one chunk or in shuffled small chunks."""
    import torch

    from culturesafe_ext.probing.stats import TaskStats

    torch.manual_seed(1)
    acts = torch.randn(500, 2, 48) * torch.logspace(-9, 3, 500)[:, None, None]
    buckets = torch.randint(0, 4, (500,))
    whole, parts = TaskStats(2, 48, 5, 4), TaskStats(2, 48, 5, 4)
    for stats, chunks in ((whole, [torch.arange(500)]), (parts, torch.randperm(500).split(7))):
        for idx in chunks:
            stats.add_tokens(buckets[idx])
            for layer in range(2):
                stats.add(layer, acts[idx, layer], buckets[idx])
    for name in ("act_sum", "topk_count", "tokens"):
        assert torch.equal(getattr(whole, name), getattr(parts, name))


def test_memory_does_not_grow_with_documents(planted_llama, tmp_path) -> None:
    sizes = {}
    for n in (2, 12):
        lm = probe(planted_llama, tmp_path / str(n), batch_size=8)
        lm.loglikelihood(mc_requests(prompts(n)))
        lm.generate_until(gen_requests(prompts(n), max_gen_toks=2))
        assert lm._rows is None and lm._prompt_tasks is None and not lm._recorded  # dropped after the call
        sizes[n] = sum(stats.nbytes() for stats in lm._stats.values())
        assert lm._stats["task_mc"].n_docs == n
    assert sizes[2] == sizes[12] == 2 * (2 * 2 * 8 * 64 * 8 + 8 * 8)


GATED = {  # family -> (config class, model class): tiny random models built from transformers configs
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "gemma": ("GemmaConfig", "GemmaForCausalLM"),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM"),
}


def _mlp_input_and_neurons(model: torch.nn.Module, site_module: torch.nn.Module, mlp: torch.nn.Module):
    """One forward pass: what enters the MLP block and what the probe site sees."""
    import torch

    seen = {}
    hooks = [
        mlp.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0].detach())),
        site_module.register_forward_pre_hook(lambda m, args: seen.setdefault("neurons", args[0].detach())),
    ]
    with torch.no_grad():
        model(input_ids=torch.tensor([[3, 9, 27, 5, 11]]))
    for hook in hooks:
        hook.remove()
    return seen["x"], seen["neurons"]


SMALL = {"vocab_size": 64, "hidden_size": 16, "num_attention_heads": 2}  # the layout tests' random models


@pytest.mark.parametrize("family", sorted(GATED))
def test_gated_layouts_probe_act_gate_times_up(family: str) -> None:
    import torch
    import transformers

    from culturesafe_ext.probing.layout import find_mlp_sites

    config_cls, model_cls = (getattr(transformers, name) for name in GATED[family])
    config = config_cls(**SMALL, num_hidden_layers=3, intermediate_size=40, num_key_value_heads=1, head_dim=8)
    torch.manual_seed(0)
    model = model_cls(config).eval()
    sites = find_mlp_sites(model)
    assert [(s.name, s.width) for s in sites] == [(f"model.layers.{i}.mlp.down_proj", 40) for i in range(3)]
    mlp = model.model.layers[1].mlp
    x, neurons = _mlp_input_and_neurons(model, sites[1].module, mlp)
    torch.testing.assert_close(neurons, mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))


def test_gpt2_and_neox_layouts_probe_act_of_w_in() -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    from culturesafe_ext.probing.layout import find_mlp_sites

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=3, n_head=2, n_inner=40)).eval()
    sites = find_mlp_sites(gpt2)
    assert [(s.name, s.width) for s in sites] == [(f"transformer.h.{i}.mlp.c_proj", 40) for i in range(3)]
    mlp = gpt2.transformer.h[2].mlp
    x, neurons = _mlp_input_and_neurons(gpt2, sites[2].module, mlp)
    torch.testing.assert_close(neurons, mlp.act(mlp.c_fc(x)))
    neox = GPTNeoXForCausalLM(GPTNeoXConfig(**SMALL, num_hidden_layers=3, intermediate_size=40)).eval()
    assert [s.name for s in find_mlp_sites(neox)] == [f"gpt_neox.layers.{i}.mlp.dense_4h_to_h" for i in range(3)]


def test_no_mlp_found_names_the_model_class() -> None:
    from transformers import OPTConfig, OPTForCausalLM

    from culturesafe_ext.probing.layout import find_mlp_sites

    opt = OPTForCausalLM(OPTConfig(**SMALL, num_hidden_layers=2, ffn_dim=40, word_embed_proj_dim=16))
    with pytest.raises(ValueError, match=r"no MLP down projection in OPTForCausalLM.*mlp\.down_proj"):
        find_mlp_sites(opt)


def test_default_output_folder_is_beside_the_results() -> None:
    """lm-eval writes <output_path>/<sanitized model name>/results_<date>.json; the stats go beside it."""
    from culturesafe_ext.models.probe import default_out_dir

    model = {"pretrained": "Org/Model-1"}
    assert default_out_dir(model, ["lm_eval", "run", "--output_path", "out/x"]) == Path(
        "out/x/Org__Model-1/probe_stats"
    )
    adapter = {"pretrained": "Org/Model-1", "peft": "/a/lora"}  # lm-eval names a run by its adapter
    assert default_out_dir(adapter, ["lm_eval", "--output_path=out"]) == Path("out/__a__lora/probe_stats")
    assert default_out_dir(model, ["lm_eval", "-o", "/r/results.json"]) == Path("/r/probe_stats")
    assert default_out_dir({"pretrained": None}, ["lm_eval", "-o", "r"]) == Path("r/probe_stats")
    assert default_out_dir(model, ["python", "x.py"]) == Path("probe_stats")


def test_bad_scope_is_refused_before_loading() -> None:
    from culturesafe_ext.models.probe import ProbeHFLM

    with pytest.raises(ValueError, match="probe_tokens='answers'"):
        ProbeHFLM(pretrained="unused", probe_tokens="answers")
