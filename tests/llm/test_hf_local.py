"""The hf backend on a tiny random Llama with tokenizers built offline (one splits "10", one does not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeItem
from culturesafe_ext.judge.judge import SCALE
from culturesafe_ext.judge.rubric import load_rubric
from culturesafe_ext.llm.backends.hf_local import HFBackend, find_score_tokens

CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tokenizer(split_digits: bool, chat_template: bool = True):
    """A small byte-level BPE trained in-process on the rubric text and on score answers."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    steps = [pre_tokenizers.ByteLevel(add_prefix_space=False)]
    if split_digits:
        steps.insert(0, pre_tokenizers.Digits(individual_digits=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    corpus = [f'{{"score": {s}}}' for s in range(1, 11)] * 20 + [load_rubric("respectfulness").system] * 3
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    if chat_template:
        fast.chat_template = CHAT
    return fast


def make_model(tokenizer):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module", params=[True, False], ids=["10-is-two-tokens", "10-is-one-token"])
def judged(request):
    tokenizer = make_tokenizer(split_digits=request.param)
    return tokenizer, make_model(tokenizer)


def items() -> list[JudgeItem]:
    responses = ["Yes.", "Shoes off is polite " * 6, "No idea.", "It is respectful " * 15, "Fine", "Ok " * 40]
    return [
        JudgeItem("Remove shoes indoors.", "Japan", f"Query {i}", r, ("respectfulness", "awareness")[i % 2])
        for i, r in enumerate(responses)
    ]


def judge_for(tokenizer, model, tmp_path: Path, **overrides) -> Judge:
    values = {
        "backend": "hf",
        "model": "tiny-random",
        "cache_path": str(tmp_path / "j.sqlite"),
        "progress": False,
    }
    config = JudgeConfig.from_dict({**values, **overrides}, env={})
    return Judge(config, backend=HFBackend(config, model=model, tokenizer=tokenizer, scale=SCALE))


def reference_probs(model, tokens, ids: list[int]) -> list[float]:
    """P(score = 1..10) from unbatched forward passes over the model's own logits, renormalised: when "10" is
    two tokens, P(10) = P("1") P("0" | "1") and P(1) = P("1") (1 - P("0" | "1"))."""
    import torch

    with torch.no_grad():
        p_next = model(torch.tensor([ids])).logits[0, -1].softmax(-1)
        raw = [p_next[t].item() for t in tokens.first]
        if tokens.two_step:
            one = tokens.first[0]
            p_zero = model(torch.tensor([[*ids, one]])).logits[0, -1].softmax(-1)[tokens.ten_second].item()
            raw[0], raw[9] = p_next[one].item() * (1 - p_zero), p_next[one].item() * p_zero
    return [p / sum(raw) for p in raw]


def expected_score(probs: list[float]) -> float:
    return sum(k * p for k, p in enumerate(probs, start=1))


def test_score_tokens() -> None:
    split = find_score_tokens(make_tokenizer(split_digits=True), SCALE)
    assert split.two_step and len(split.shared) == 1 and split.first[9] == split.first[0]
    merged = find_score_tokens(make_tokenizer(split_digits=False), SCALE)
    assert not merged.two_step and len(set(merged.first)) == 10


def test_weighted_mean_argmax_and_batching(judged, tmp_path: Path) -> None:
    tokenizer, model = judged
    batched = judge_for(tokenizer, model, tmp_path, batch_size=4, cache=False).score_many(items())
    single = judge_for(tokenizer, model, tmp_path, batch_size=1, cache=False).score_many(items())
    backend = judge_for(tokenizer, model, tmp_path).client.backend
    for item, b, s in zip(items(), batched, single, strict=True):
        assert b.parse_ok and b.error is None
        messages = load_rubric(item.dimension).messages(item.custom, item.location, item.query, item.response)
        assert b.score == pytest.approx(
            expected_score(reference_probs(model, backend.tokens, backend.render(messages)))
        )
        probs = json.loads(b.raw)["probs"]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert b.argmax == 1 + max(range(10), key=probs.__getitem__)
        assert b.score == pytest.approx(sum(p * k for k, p in enumerate(probs, start=1)), abs=1e-4)
        assert 0.0 < json.loads(b.raw)["mass"] <= 1.0
        assert b.score == pytest.approx(s.score, abs=1e-5) and b.argmax == s.argmax
    assert len({round(r.score, 6) for r in batched}) > 1  # different prompts, different scores


def test_two_step_ten_matches_the_full_sequence(tmp_path: Path) -> None:
    import torch

    tokenizer = make_tokenizer(split_digits=True)
    model = make_model(tokenizer)
    backend = judge_for(tokenizer, model, tmp_path).client.backend
    ids = backend.render(load_rubric("awareness").messages("custom", "place", "query", "response"))
    (probs,), (mass,) = backend.score_ids([ids])
    one, zero = backend.tokens.first[0], backend.tokens.ten_second
    with torch.no_grad():
        p_next = model(torch.tensor([ids])).logits[0, -1].softmax(-1)
        p_zero = model(torch.tensor([[*ids, one]])).logits[0, -1].softmax(-1)[zero]
    raw = [p_next[t].item() for t in backend.tokens.first[:9]] + [p_next[one].item() * p_zero.item()]
    raw[0] = p_next[one].item() * (1 - p_zero.item())
    assert mass == pytest.approx(sum(raw), rel=1e-4)
    assert probs == pytest.approx([p / sum(raw) for p in raw], rel=1e-4)


def test_cached_rerun_runs_no_model(judged, tmp_path: Path) -> None:
    tokenizer, model = judged
    first = judge_for(tokenizer, model, tmp_path).score_many(items())
    judge = judge_for(tokenizer, model, tmp_path)
    second = judge.score_many(items())
    assert judge.client.backend.attempts == 0 and all(r.from_cache for r in second)
    assert [r.score for r in second] == pytest.approx([r.score for r in first])
    assert [r.argmax for r in second] == [r.argmax for r in first]


def test_tokenizer_without_chat_template(tmp_path: Path) -> None:
    """Without a chat template the prompt is the messages' contents joined by blank lines, then the answer prefix:
    each score is the expected score the model's logits give on that text."""
    tokenizer = make_tokenizer(split_digits=True, chat_template=False)
    model = make_model(tokenizer)
    judge = judge_for(tokenizer, model, tmp_path, cache=False)
    results = judge.score_many(items()[:2])
    for item, result in zip(items()[:2], results, strict=True):
        messages = load_rubric(item.dimension).messages(item.custom, item.location, item.query, item.response)
        text = "\n\n".join(m["content"] for m in messages) + "\n\n" + SCALE.prefix
        ids = [*tokenizer.encode(text), *judge.client.backend.tokens.shared]
        assert result.score == pytest.approx(expected_score(reference_probs(model, judge.client.backend.tokens, ids)))


def test_generate_mode_matches_unbatched_greedy(judged, tmp_path: Path) -> None:
    """Batched, left-padded free-text generation gives what one-by-one greedy ``generate`` gives."""
    import torch

    tokenizer, model = judged
    judge = judge_for(tokenizer, model, tmp_path, batch_size=3)
    prompts = [[{"role": "user", "content": "Say something " * n}] for n in (1, 4, 9, 2)]
    requests = [judge.client.request(m, "gen-test.v1", mode="generate", max_tokens=6) for m in prompts]
    done = judge.client.complete(requests)
    backend = judge.client.backend
    for request in requests:
        ids = torch.tensor([backend.render(request.messages, answer_prefix=False)])
        alone = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=6,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        expected = tokenizer.decode(alone[0, ids.shape[1] :], skip_special_tokens=True)
        assert done.replies[request.key].text == expected
    cut = sum(done.replies[r.key].kind == "truncated" for r in requests)  # 6 tokens, no end token
    assert judge.client.complete(requests).sent == cut  # a truncated reply is never cached (issue 16)


def test_usage_counts_the_prompt_and_the_generated_tokens(judged, tmp_path: Path) -> None:
    """The local judge reports the tokens it read and wrote, as a server's ``usage`` does (scores: none written)."""
    import torch

    tokenizer, model = judged
    judge = judge_for(tokenizer, model, tmp_path, batch_size=3, cache=False)
    for item, result in zip(items(), judge.score_many(items()), strict=True):
        fields = (item.custom, item.location, item.query, item.response)
        prompt = judge.client.backend.render(load_rubric(item.dimension).messages(*fields))
        assert result.to_dict()["usage"] == {"prompt_tokens": len(prompt), "completion_tokens": 0}
    prompts = [[{"role": "user", "content": "Say something " * n}] for n in (1, 4, 9)]
    requests = [judge.client.request(m, "gen-test.v1", mode="generate", max_tokens=6) for m in prompts]
    done = judge.client.complete(requests)
    for request in requests:
        ids = torch.tensor([judge.client.backend.render(request.messages, answer_prefix=False)])
        alone = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                               pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()  # fmt: skip
        ends = judge.client.backend._end_ids()
        written = next((k + 1 for k, t in enumerate(alone) if t in ends), len(alone))
        usage = done.replies[request.key].usage
        assert usage == {"prompt_tokens": ids.shape[1], "completion_tokens": written} and written >= 1
