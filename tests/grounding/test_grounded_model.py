"""hf-grounded: prompts, retrieval, the wrapper against plain HFLM, and each mode through the lm_eval CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturesafe_ext.grounding import prompts
from culturesafe_ext.grounding.retrieve import BM25Index, Passage, Recall, load_passages, passages_from_jsonl

PASSAGES = [
    Passage("th-head", "In Thailand the head is considered sacred, so touching someone's head is rude."),
    Passage("in-left", "In India the left hand is considered unclean for eating and passing food."),
    Passage("es-dinner", "In Spain dinner is eaten late, often after nine in the evening."),
]


def test_knowledge_goes_at_the_start_of_the_user_turn():
    assert prompts.fill("Q?", "K.") == "Cultural knowledge: K.\n\nQ?"
    assert prompts.fill("Q?", "  ") == "Q?"
    chat = f"<s>system\nBe nice<e><s>user\n{prompts.SLOT}Q?<e><s>assistant\n"
    assert prompts.fill(chat, "K.") == "<s>system\nBe nice<e><s>user\nCultural knowledge: K.\n\nQ?<e><s>assistant\n"
    assert prompts.plain(chat) == "<s>system\nBe nice<e><s>user\nQ?<e><s>assistant\n"


def test_bm25_finds_the_relevant_passage_and_recall_counts():
    index = BM25Index(PASSAGES)
    hits = index.search(["Can I pat the head of my Thai friend's son?", "Is it fine to eat with my left hand?"], 2)
    assert [row[0].id for row in hits] == ["th-head", "in-left"]
    assert len(hits[0]) == 2 and hits[0][0].score >= hits[0][1].score
    recall = Recall(k=1)
    assert recall.add("th-head", hits[0][:1]) is True
    assert recall.add("es-dinner", hits[1][:1]) is False
    assert recall.add(None, hits[1]) is None  # no gold: not counted
    assert recall.to_dict() == {"k": 1, "recall": 0.5, "hits": 1, "n_with_gold": 2}


def test_jsonl_source_errors_name_file_line_and_field(tmp_path: Path):
    good = tmp_path / "k.jsonl"
    good.write_text('{"id": "a", "text": "alpha"}\n\n{"description_id": "b", "description": "beta"}\n')
    assert passages_from_jsonl(good) == [Passage("a", "alpha"), Passage("b", "beta")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "alpha"}\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl: line 2 \(id 'b'\): field 'text'"):
        passages_from_jsonl(bad)
    with pytest.raises(ValueError, match="no 'description'"):
        load_passages("docs", [{"question": "x"}])


@pytest.fixture(scope="module")
def knowledge_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("k") / "knowledge.jsonl"
    path.write_text("".join(json.dumps({"id": p.id, "text": p.text}) + "\n" for p in PASSAGES))
    return path


def _instances(contexts, gen_kwargs):
    from lm_eval.api.instance import Instance

    return [
        Instance("generate_until", {"description_id": "th-head"}, (c, dict(gen_kwargs)), i, ("t", i, 1))
        for i, c in enumerate(contexts)
    ]


def test_cad_alpha_zero_through_the_wrapper_is_hflm_greedy_on_the_grounded_prompt(tiny_model, knowledge_file, tmp_path):
    """Same tokens as lm-eval's own HFLM given the retrieved knowledge, batched, with stop sequences."""
    from lm_eval.models.huggingface import HFLM

    from culturesafe_ext.models.grounded import GroundedHFLM

    common = {"pretrained": str(tiny_model), "batch_size": 2, "device": "cpu"}
    log = tmp_path / "g.jsonl"
    ours = GroundedHFLM(
        grounding="cad", alpha=0.0, knowledge_source=str(knowledge_file), grounding_log=str(log), **common
    )
    plain = HFLM(**common)
    queries = ["Can I pat a Thai child's head?", "Eat with the left hand in India?", "When is dinner in Spain?"]
    kwargs = {"until": ["\n\n", "Question"], "max_gen_toks": 16, "do_sample": False}
    got = ours.generate_until(_instances(queries, kwargs))
    knowledge = {q: p.text for q, p in zip(queries, PASSAGES, strict=True)}
    want = plain.generate_until(_instances([prompts.fill(q, knowledge[q]) for q in queries], kwargs))
    assert got == want
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["hits"][0]["id"] for line in lines] == [p.id for p in PASSAGES]
    assert ours.get_model_info()["grounding"]["retrieval_recall"] == {
        "k": 1,
        "recall": 1 / 3,
        "hits": 1,
        "n_with_gold": 3,
    }
    ours.alpha = 1.0
    assert ours.generate_until(_instances(queries, kwargs)) != got
    ours.cad_source = "elicit"  # CAD on the model's own stated knowledge: a first pass, logged
    assert len(ours.generate_until(_instances(queries[:2], kwargs))) == 2
    elicited = [json.loads(line) for line in log.read_text().splitlines()][-2:]
    assert all(prompts.ELICIT_INSTRUCTION in x["elicit_prompt"] and "hits" not in x for x in elicited)
