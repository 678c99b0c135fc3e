"""One real ``lm_eval --num_fewshot 3 --limit 10 --log_samples`` run over every family (mc, gen, circular,
safety, CulturaX): no logged prompt shows its own description (or CulturaX cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lm_eval_run import lm_eval_args, run_lm_eval

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
