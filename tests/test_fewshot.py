"""Few-shot examples never come from the evaluated item's own description (or CulturaX cluster).

Unit tests of the sampler, then one real ``lm_eval --num_fewshot 3 --limit 10 --log_samples`` run over
every family (mc, gen, circular, safety, CulturaX) that reads every logged prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lm_eval_run import lm_eval_args, run_lm_eval

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

ADA_TASKS = {
    "adaculturesafe_knowledge_china": "knowledge_china",
    "adaculturesafe_knowledge_gen_china": "knowledge_china",
    "adaculturesafe_knowledge_circular_china": "knowledge_china",
    "adaculturesafe_safety_china": "safety_china",
}
CULTURAX_TASK = "culturax_greedy_performance_and_celebration"


def _prompts(sample: dict) -> list[str]:
    """Every context string lm-eval logged for a sample (one per option for multiple choice)."""
    return [args["arg_0"] for args in sample["arguments"].values()]


def fewshot_run(model: Path, tmp_path: Path) -> dict:
    metadata = {"culturesafe_data": "bundled", "culturax_data": "bundled", "judge": {"backend": "none"}}
    args = lm_eval_args(model, [*ADA_TASKS, CULTURAX_TASK], metadata, limit=10, batch_size=8, max_gen_toks=2)
    return run_lm_eval([*args, "--num_fewshot", "3"], tmp_path)


def lm_eval_jobs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The module's one run (started early by conftest's ``lm_eval_pool``)."""
    tmp = tmp_path_factory.mktemp("fewshot")
    return {"fewshot": lambda: fewshot_run(tiny_model, tmp)}


@pytest.mark.e2e
def test_no_prompt_shows_its_own_description(lm_eval_runs: dict) -> None:
    from culturesafe_ext.data.loader import load_adaculturesafe, load_culturax

    run = lm_eval_runs["fewshot"].result()
    folder = Path(run["_dir"])
    for task, config in ADA_TASKS.items():
        rows = load_adaculturesafe(config, "bundled")["test"]
        key = "question" if config.startswith("knowledge") else "query"
        texts = {r["id"]: (r["description_id"], r[key], r["description"]) for r in rows}
        [path] = folder.glob(f"samples_{task}_*.jsonl")
        samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(samples) == 10, task
        for sample in samples:
            own_description = sample["doc"]["description_id"]
            for prompt in _prompts(sample):
                shown = {i for i, (_, text, _) in texts.items() if text in prompt}
                examples = {i for i in shown if texts[i][1] != sample["doc"][key]}
                assert prompt.count(sample["doc"][key]) == 1, (task, "own question shown as an example")
                assert len(examples) == 3, (task, sample["doc"]["id"], examples)
                assert all(texts[i][0] != own_description for i in examples), (task, sample["doc"]["id"], examples)
                if key == "query":
                    assert sample["doc"]["description"] not in prompt  # the custom is never an example's answer
    [gen_path] = folder.glob("samples_adaculturesafe_knowledge_gen_china_*.jsonl")
    gen = json.loads(gen_path.read_text(encoding="utf-8").splitlines()[0])
    assert '{"answer": "' in _prompts(gen)[0].split(gen["doc"]["question"])[0]  # examples answer in the asked form

    questions = {r["question"] for r in load_culturax("all", "bundled")["train"]}
    [path] = folder.glob(f"samples_{CULTURAX_TASK}_*.jsonl")
    for sample in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()):
        prompt = _prompts(sample)[0]
        assert sum(q in prompt for q in questions) == 3 and prompt.count(sample["doc"]["question"]) == 1
        assert sample["doc"]["helpful"] not in prompt
