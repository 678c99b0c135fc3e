"""Contrastive decoding: the formula, transformers' CFG as reference, alpha=0 = greedy, batched = unbatched."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model)


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


KNOWLEDGE = "Cultural knowledge: In Thailand the head is sacred; never touch a child's head.\n\n"
QUERIES = [
    "Write a cheerful greeting for my Thai host's children.",
    "How do I greet elders?",
    "Suggest a gift for a family dinner in Bangkok, something that shows I care about their traditions a lot.",
]


def test_contrast_is_the_formula_on_a_hand_built_case():
    import torch
    import torch.nn.functional as F

    from culturesafe_ext.grounding import cad

    g = torch.tensor([[2.0, 0.0, -1.0]])
    u = torch.tensor([[0.0, 3.0, 0.0]])
    lg, lu = F.log_softmax(g, -1), F.log_softmax(u, -1)
    assert torch.allclose(cad.contrast(g, u, 0.5), 1.5 * lg - 0.5 * lu)
    assert torch.allclose(cad.contrast(g, u, 0.0), lg)
    # on raw logits the formula differs by a constant per position: the same distribution
    assert torch.allclose(F.softmax(cad.contrast(g, u, 0.5), -1), F.softmax(1.5 * g - 0.5 * u, -1))
    # alpha pushes away from what the plain stream prefers (token 1) toward the grounded choice
    assert cad.contrast(g, u, 2.0).argmax().item() == 0 and cad.contrast(g, u, 2.0)[0, 1] < lg[0, 1]


def test_generated_scores_match_the_formula_with_full_forward_passes(tiny):
    import torch
    import torch.nn.functional as F

    from culturesafe_ext.grounding import cad

    model, tok = tiny
    grounded, plain = ids(tok, KNOWLEDGE + QUERIES[0]), ids(tok, QUERIES[0])
    new, scores = cad.generate(model, [grounded], [plain], 0.7, 5, tok.pad_token_id, return_scores=True)
    new = new[0].tolist()
    for t in range(len(new)):
        with torch.no_grad():
            g = model(torch.tensor([grounded + new[:t]])).logits[0, -1]
            u = model(torch.tensor([plain + new[:t]])).logits[0, -1]
        expected = 1.7 * F.log_softmax(g, -1) - 0.7 * F.log_softmax(u, -1)
        assert torch.allclose(scores[0, t], expected, atol=1e-4)
        assert new[t] == int(expected.argmax())


def test_matches_transformers_classifier_free_guidance(tiny):
    """CFG with guidance_scale = 1 + alpha and the plain prompt as negative prompt is the reference."""
    import torch

    from culturesafe_ext.grounding import cad

    model, tok = tiny
    grounded, plain = ids(tok, KNOWLEDGE + QUERIES[1]), ids(tok, QUERIES[1])
    alpha, steps = 0.5, 8
    ref = model.generate(
        torch.tensor([grounded]),
        attention_mask=torch.ones(1, len(grounded), dtype=torch.long),
        negative_prompt_ids=torch.tensor([plain]),
        guidance_scale=1 + alpha,
        do_sample=False,
        max_new_tokens=steps,
        min_new_tokens=steps,
        output_scores=True,
        return_dict_in_generate=True,
        pad_token_id=tok.pad_token_id,
    )
    ours, scores = cad.generate(model, [grounded], [plain], alpha, steps, tok.pad_token_id, return_scores=True)
    assert ours[0].tolist() == ref.sequences[0, len(grounded) :].tolist()
    for t, ref_scores in enumerate(ref.scores):
        kept = torch.isfinite(ref_scores[0])  # min_new_tokens masks the EOS token with -inf; compare the rest
        assert (~kept).sum() <= 2
        assert torch.allclose(scores[0, t][kept], ref_scores[0][kept], atol=1e-4)


def test_alpha_zero_is_plain_greedy_and_batched_equals_unbatched(tiny):
    import torch

    from culturesafe_ext.grounding import cad

    model, tok = tiny
    grounded = [ids(tok, KNOWLEDGE + q) for q in QUERIES]
    plain = [ids(tok, q) for q in QUERIES]
    steps = 12
    batched0 = cad.generate(model, grounded, plain, 0.0, steps, tok.pad_token_id)
    batched = cad.generate(model, grounded, plain, 0.8, steps, tok.pad_token_id)
    for i, row in enumerate(grounded):
        greedy = model.generate(
            torch.tensor([row]),
            attention_mask=torch.ones(1, len(row), dtype=torch.long),
            do_sample=False,
            max_new_tokens=steps,
            min_new_tokens=steps,
            pad_token_id=tok.pad_token_id,
        )[0, len(row) :]
        assert batched0[i].tolist() == greedy.tolist()
        alone = cad.generate(model, [row], [plain[i]], 0.8, steps, tok.pad_token_id)
        assert batched[i].tolist() == alone[0].tolist()
    assert batched.tolist() != batched0.tolist()  # alpha changes what is generated


def test_score_matches_the_formula_and_batching(tiny):
    import torch
    import torch.nn.functional as F

    from culturesafe_ext.grounding import cad

    model, tok = tiny
    pairs = [(ids(tok, KNOWLEDGE + q), ids(tok, q), ids(tok, " Bow politely.")) for q in QUERIES]
    alpha = 0.6
    batched = cad.score(model, [(g, c) for g, _, c in pairs], [(p, c) for _, p, c in pairs], alpha, tok.pad_token_id)
    for (g, p, c), (logprob, _) in zip(pairs, batched, strict=True):
        with torch.no_grad():
            lg = model(torch.tensor([g + c[:-1]])).logits[0, len(g) - 1 :]
            lp = model(torch.tensor([p + c[:-1]])).logits[0, len(p) - 1 :]
        mixed = F.log_softmax(cad.contrast(lg, lp, alpha), -1)
        expected = float(mixed.gather(1, torch.tensor(c)[:, None]).sum())
        assert logprob == pytest.approx(expected, abs=1e-3)
    plain_only = cad.score(model, [(g, c) for g, _, c in pairs], [(p, c) for _, p, c in pairs], 0.0, tok.pad_token_id)
    with torch.no_grad():
        g, _, c = pairs[0]
        direct = F.log_softmax(model(torch.tensor([g + c[:-1]])).logits[0, len(g) - 1 :], -1)
    assert plain_only[0][0] == pytest.approx(float(direct.gather(1, torch.tensor(c)[:, None]).sum()), abs=1e-3)


def test_min_new_tokens_holds_eos_back_like_transformers(tiny):
    """Each query's first greedy token is made the EOS id: without min_new_tokens every row stops at once."""
    import torch

    from culturesafe_ext.grounding import cad

    model, tok = tiny
    grounded = [ids(tok, KNOWLEDGE + q) for q in QUERIES]
    plain = [ids(tok, q) for q in QUERIES]
    first = cad.generate(model, grounded, plain, 0.0, 1, tok.pad_token_id)[:, 0].tolist()
    eos = first[0]
    stopped = cad.generate(model, grounded[:1], plain[:1], 0.0, 6, tok.pad_token_id, eos_ids=[eos])
    assert stopped.shape[1] == 1  # the EOS came first: done
    held = cad.generate(model, grounded[:1], plain[:1], 0.0, 6, tok.pad_token_id, eos_ids=[eos], min_new_tokens=4)
    assert held.shape[1] >= 4 and eos not in held[0, :4].tolist()
    greedy = model.generate(
        torch.tensor([grounded[0]]),
        attention_mask=torch.ones(1, len(grounded[0]), dtype=torch.long),
        do_sample=False,
        max_new_tokens=6,
        min_new_tokens=4,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id,
    )[0, len(grounded[0]) :]
    assert held[0].tolist() == greedy.tolist()[: held.shape[1]]  # as transformers' min_new_tokens
