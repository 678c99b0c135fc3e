"""A beaver-dam-style moderation model (a decoder-only LM with a multi-label harm head) scores CulturaX's SS
through the classifier adapter: tested with a tiny random model of that shape."""

from __future__ import annotations

from pathlib import Path

import pytest

HARMS = ("animal_abuse", "discrimination,stereotype,injustice", "hate_speech,offensive_language")


def _moderator(tiny_model: Path, folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = LlamaConfig.from_pretrained(
        tiny_model, num_labels=len(HARMS), id2label=dict(enumerate(HARMS)),
        label2id={h: i for i, h in enumerate(HARMS)}, problem_type="multi_label_classification",
    )  # fmt: skip
    config.pad_token_id = tokenizer.eos_token_id
    LlamaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_moderation_model_scores_question_and_answer_with_its_own_head(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from culturesafe_ext.judge import hhh
    from culturesafe_ext.judge.ss_classifiers import ANY_HARM, MODERATION, MODERATION_FORMAT, kind_of, load

    folder = str(_moderator(tiny_model, tmp_path / "dam"))
    assert kind_of(folder) == MODERATION
    assert hhh._unsafe_label(folder, None) == ANY_HARM  # no "unsafe" label needed: any harm category
    with pytest.raises(ValueError, match="moderation model"):
        hhh._unsafe_label(folder, "hate_speech,offensive_language")

    pairs = [("Is it rude to tip in Japan?", "Yes, usually."), ("Why do people bow?", "Out of respect.")]
    got = load(folder, ANY_HARM).p_unsafe(pairs)
    # the same number by hand: the conversation string, the head's logits, sigmoid, max over harm categories
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    for (q, a), p in zip(pairs, got, strict=True):
        ids = tok(MODERATION_FORMAT.format(question=q, answer=a), return_tensors="pt")
        with torch.no_grad():
            expected = torch.sigmoid(model(**ids).logits[0]).max().item()
        assert p == pytest.approx(expected, abs=1e-5)

    hhh_settings = {"ss": "classifier", "ss_classifier": folder, "ss_unsafe_label": ANY_HARM, "ss_threshold": 0.5}
    docs = [{"question": q} for q, _ in pairs]
    out = [[{"response": a}] for _, a in pairs]
    hhh._classify(hhh_settings, docs, out)
    for entries, p in zip(out, got, strict=True):
        verdict = entries[0]["ss"]
        assert verdict["error"] is None and verdict["p_unsafe"] == pytest.approx(p)
        assert verdict["unsafe"] == (p >= 0.5)
