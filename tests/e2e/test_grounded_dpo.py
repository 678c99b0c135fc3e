"""culturesafe train grounded-dpo: pairs from training descriptions, DPO+LoRA, lm-eval loads the adapter."""

from __future__ import annotations

import json

import pytest
from support.lm_eval_run import run_lm_eval
from support.openai_standin import StandIn

from culturesafe_ext.data import loader, splits


def chosen(messages: list[dict]) -> str:
    user = messages[-1]["content"]
    custom = user.split("Cultural custom: ", 1)[1].split("\n", 1)[0]
    return f"Relevant knowledge: {custom[:120]} With that in mind, here is a respectful answer."


def test_dpo_trains_loss_falls_and_lm_eval_loads_the_adapter(tiny_model, tmp_path):
    from culturesafe_ext.training.grounded_dpo import Settings, train

    out = tmp_path / "adapter"
    with StandIn(responder=chosen, max_lifetime=300) as server:
        generator = {
            "backend": "openai",
            "model": "stand-in",
            "base_url": server.base_url,
            "cache_path": str(tmp_path / "gen.sqlite"),
            "progress": False,
        }
        summary = train(
            Settings(
                base=str(tiny_model),
                out=str(out),
                data="bundled",
                generator=generator,
                max_pairs=6,
                answer_tokens=8,
                max_steps=8,
                batch_size=2,
                learning_rate=5e-3,
                lora_r=4,
                lora_alpha=8,
                max_length=128,
            )
        )
    assert summary["pairs"] == 6 and summary["generator_failures"] == 0
    manifest = json.loads((out / splits.TRAINING_MANIFEST).read_text())
    losses = manifest["losses"]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert manifest["base_revision"].startswith("local-sha256:") and manifest["settings"]["seed"] == 0
    assert (out / "adapter_config.json").exists()
    split = splits.DescriptionSplit.load(out / "split.json")
    assert set(manifest["trained_descriptions"]) <= set(split.train)
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert all(p["chosen"].startswith("Relevant knowledge:") and p["description_id"] in split.train for p in pairs)

    # evaluating on the trained-on descriptions is refused; the held-out part runs through lm_eval
    with pytest.raises(ValueError, match="were used to train the model"):
        loader.load_adaculturesafe("knowledge", culturesafe_data="bundled", peft=str(out))
    run = run_lm_eval(
        [
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_model},peft={out}",
            "--tasks",
            "adaculturesafe_knowledge_china",
            "--limit",
            "4",
            "--device",
            "cpu",
            "--metadata",
            json.dumps({"culturesafe_data": "bundled", "culturesafe_split": str(out / "split.json")}),
        ],
        tmp_path,
    )
    assert run["results"]["adaculturesafe_knowledge_china"]["acc,none"] is not None
    assert "peft" in run["config"]["model_args"]
