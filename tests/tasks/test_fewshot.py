"""Few-shot examples never come from the evaluated item's own description (or CulturaX cluster).

Unit tests of the sampler, then one real ``lm_eval --num_fewshot 3 --limit 10 --log_samples`` run over
every family (mc, gen, circular, safety, CulturaX) that reads every logged prompt.
"""

from __future__ import annotations

import pytest

from culturesafe_ext.tasks.fewshot import OtherDescriptionSampler, group_of


def pool(descriptions: int = 4, per: int = 5, rotations: int = 1) -> list[dict]:
    return [
        {"id": f"D{d}/k{q}", "description_id": f"D{d}", "question": f"q{d}.{q}", "rotation": r}
        for d in range(descriptions)
        for q in range(per)
        for r in range(rotations)
    ]


@pytest.mark.parametrize("rotations", [1, 4])
def test_examples_come_only_from_other_descriptions_and_are_distinct_questions(rotations: int) -> None:
    docs = pool(rotations=rotations)
    sampler = OtherDescriptionSampler(docs, rnd=1234)
    for doc in docs:
        shots = sampler.sample(3, eval_doc=doc)
        assert len(shots) == 3
        assert all(s["description_id"] != doc["description_id"] for s in shots)
        assert len({s["id"] for s in shots}) == 3  # never two rotations of one question


def test_examples_are_deterministic_per_doc_whatever_the_order_or_limit() -> None:
    docs = pool()
    first = OtherDescriptionSampler(docs, rnd=1234)
    forward = {d["id"]: [s["id"] for s in first.sample(3, eval_doc=d)] for d in docs}
    second = OtherDescriptionSampler(docs, rnd=None).set_rnd(1234)
    backward = {d["id"]: [s["id"] for s in second.sample(3, eval_doc=d)] for d in reversed(docs[:7])}
    assert all(forward[k] == v for k, v in backward.items())
    other_seed = OtherDescriptionSampler(docs, rnd=7)
    assert any(forward[d["id"]] != [s["id"] for s in other_seed.sample(3, eval_doc=d)] for d in docs)


def test_too_few_other_descriptions_is_a_clear_error() -> None:
    docs = pool(descriptions=2, per=2)
    with pytest.raises(ValueError, match="--num_fewshot 3: only 2 question"):
        OtherDescriptionSampler(docs, rnd=1).sample(3, eval_doc=docs[0])


def test_groups_description_then_cluster_then_id() -> None:
    assert group_of({"id": "x", "description_id": "CHN/a", "cluster_id": "c"}) == "description_id=CHN/a"
    assert group_of({"id": "r0007", "cluster_id": "r0006"}) == "cluster_id=r0006"
    assert group_of({"id": "r1"}) == "id=r1"


# ---------------------------------------------------------------------------------------------------
# The real CLI
# ---------------------------------------------------------------------------------------------------
