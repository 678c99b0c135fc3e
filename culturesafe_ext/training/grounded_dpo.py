"""``culturesafe train grounded-dpo``: the paper's knowledge-grounded remedy, DPO + LoRA.

Preference pairs come from the *training* descriptions only (a seeded split by description, saved as
``split.json`` beside the adapter): for each safety query the preferred answer is a respectful one
that first states the relevant cultural knowledge, written by a generator LLM through the one client
(:mod:`culturesafe_ext.judge`, cached on disk); the rejected answer is the base model's own greedy
answer. TRL's ``DPOTrainer`` trains a peft LoRA adapter (the reference model is the base with the
adapter off). The adapter folder loads with ``lm_eval --model hf --model_args pretrained=BASE,peft=DIR``;
its training manifest makes lm-eval refuse trained-on descriptions, and
``--metadata '{"culturesafe_split": "DIR/split.json"}'`` evaluates the held-out ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from culturesafe_ext.llm.secrets import public_settings

log = logging.getLogger("culturesafe")

# The chosen-answer prompt: a versioned file beside the judge rubrics (culturesafe_ext/judge/rubrics/).
CHOSEN_PROMPT = ("grounded-chosen", "v1")
PROMPT_ID = ".".join(CHOSEN_PROMPT)


@dataclass
class Settings:
    """Everything that decides the adapter (written to the training manifest)."""

    base: str
    out: str
    data: str
    generator: dict[str, Any]
    seed: int = 0
    heldout_fraction: float = 0.5
    max_pairs: int = 0
    answer_tokens: int = 128
    chosen_tokens: int = 256
    max_steps: int = 100
    learning_rate: float = 5e-5
    beta: float = 0.1
    batch_size: int = 2
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    max_length: int = 512


def add_parser(recipes: argparse._SubParsersAction) -> None:
    p = recipes.add_parser(
        "grounded-dpo",
        help="DPO + LoRA on preference pairs whose chosen answer states the cultural knowledge first",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--base", required=True, help="base model: a Hugging Face folder or Hub id")
    p.add_argument("--out", required=True, type=Path, help="adapter folder to write")
    p.add_argument("--data", default="bundled", help="dataset source (Hub id, local build, or 'bundled')")
    p.add_argument(
        "--generator",
        required=True,
        help='the LLM that writes the chosen answers, as LLM settings JSON, e.g. \'{"backend": "openai", '
        '"model": "qwen3-max", "base_url": "..."}\' (key from CULTURESAFE_JUDGE_API_KEY) or a local "hf" model',
    )
    for name, default, what in [
        ("seed", 0, "seed of the description split and of training"),
        ("heldout-fraction", 0.5, "share of each country's descriptions kept for evaluation"),
        ("max-pairs", 0, "use at most this many training queries (0: all)"),
        ("answer-tokens", 128, "length of the base model's own (rejected) answers"),
        ("chosen-tokens", 256, "length limit of the generator's (chosen) answers"),
        ("max-steps", 100, "DPO optimisation steps"),
        ("learning-rate", 5e-5, "learning rate"),
        ("beta", 0.1, "DPO beta (strength of the pull toward the reference model)"),
        ("batch-size", 2, "pairs per device and step"),
        ("lora-r", 8, "LoRA rank"),
        ("lora-alpha", 16, "LoRA alpha"),
        ("lora-dropout", 0.0, "LoRA dropout"),
        ("max-length", 512, "longest prompt + answer in tokens"),
    ]:
        p.add_argument(f"--{name}", type=type(default), default=default, help=f"{what} (default {default})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from culturesafe_ext.llm.settings import parse_settings

    generator = parse_settings(args.generator, "--generator")
    settings = Settings(
        base=args.base,
        out=str(args.out),
        data=args.data,
        generator=generator,
        **{
            k: getattr(args, k)
            for k in Settings.__dataclass_fields__
            if k not in ("base", "out", "data", "generator") and hasattr(args, k)
        },
    )
    summary = train(settings)
    print(json.dumps(summary, indent=2))
    return 0


def train(settings: Settings) -> dict[str, Any]:
    """Split, build pairs, train, save adapter + split + pairs + manifest; return a summary."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import DPOConfig, DPOTrainer

    from culturesafe_ext.data.loader import load_adaculturesafe
    from culturesafe_ext.data.splits import split_descriptions, write_training_manifest

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(settings.seed)
    rows = list(load_adaculturesafe(culturesafe_config="safety", culturesafe_data=settings.data)["test"])
    split = split_descriptions(rows, settings.heldout_fraction, settings.seed, source=settings.data)
    split.save(out / "split.json")
    train_ids = set(split.train)
    train_rows = [r for r in rows if r["description_id"] in train_ids]
    if settings.max_pairs:
        train_rows = train_rows[: settings.max_pairs]
    if not train_rows:
        raise ValueError(f"{settings.data}: no safety queries in the training descriptions")

    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(settings.base, dtype=torch.float32)
    chat = tokenizer.chat_template is not None

    chosen, failures = _chosen_answers(settings, train_rows)
    rejected = _base_answers(model, tokenizer, [r["query"] for r in train_rows], settings.answer_tokens, chat)
    pairs = [
        {"description_id": r["description_id"], "query": r["query"], "chosen": c, "rejected": rej}
        for r, c, rej in zip(train_rows, chosen, rejected, strict=True)
        if c is not None
    ]
    if not pairs:
        raise RuntimeError(f"the generator answered none of the {len(train_rows)} requests ({failures} failed)")
    with (out / "pairs.jsonl").open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair, ensure_ascii=False) + "\n")

    dataset = Dataset.from_list([_dpo_row(p, chat) for p in pairs])
    config = DPOConfig(
        output_dir=str(out / "trainer"),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        beta=settings.beta,
        max_length=settings.max_length,
        seed=settings.seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    trainer.train()
    trainer.save_model(str(out))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    trained_on = sorted({p["description_id"] for p in pairs})
    import trl

    write_training_manifest(
        out,
        split,
        trained_on,
        recipe="grounded-dpo",
        base_model=settings.base,
        base_revision=_revision(settings.base, model),
        settings={**asdict(settings), "generator": public_settings(settings.generator)},
        chosen_prompt=PROMPT_ID,
        pairs=len(pairs),
        generator_failures=failures,
        losses=losses,
        versions={"trl": trl.__version__, "torch": torch.__version__},
    )
    return {
        "adapter": str(out),
        "pairs": len(pairs),
        "generator_failures": failures,
        "trained_descriptions": len(trained_on),
        "heldout_descriptions": len(split.heldout),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "split": str(out / "split.json"),
    }


def _chosen_answers(settings: Settings, rows: list[dict]) -> tuple[list[str | None], int]:
    """The generator's grounded answer per row (None where it failed; failures are counted)."""
    from culturesafe_ext.llm import LLMClient, LLMConfig
    from culturesafe_ext.llm.prompts import load_template

    # a writer, not a judge: LLMConfig reads no CULTURESAFE_JUDGE_* variable
    writer = LLMClient(LLMConfig.from_spec(settings.generator, "--generator"))
    prompt = load_template(*CHOSEN_PROMPT, package="culturesafe_ext.judge", folder="rubrics")
    requests = []
    for row in rows:
        messages = prompt.messages(location=row["location"], description=row["description"], query=row["query"])
        requests.append(writer.request(messages, PROMPT_ID, mode="generate", max_tokens=settings.chosen_tokens))
    done = writer.complete(requests)
    answers: list[str | None] = []
    failures = 0
    for request in requests:
        reply = done.replies[request.key]
        text = (reply.text or "").strip() if reply.error is None else ""
        if not text:
            failures += 1
            log.warning("grounded-dpo: no chosen answer for one request (%s)", reply.error or "empty reply")
        answers.append(text or None)
    return answers, failures


def _base_answers(model, tokenizer, queries: list[str], max_new_tokens: int, chat: bool) -> list[str]:
    """The base model's own greedy answers: the rejected side of each pair."""
    import torch

    from culturesafe_ext.training.task_items import as_user_turn

    prompts = [as_user_turn(tokenizer, q) if chat else q for q in queries]
    answers = []
    tokenizer.padding_side = "left"
    for start in range(0, len(prompts), 8):
        batch = tokenizer(prompts[start : start + 8], return_tensors="pt", padding=True, add_special_tokens=not chat)
        with torch.no_grad():
            out = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        answers += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    tokenizer.padding_side = "right"
    return [a.strip() or "(no answer)" for a in answers]


def _dpo_row(pair: dict, chat: bool) -> dict:
    """TRL's conversational preference format for chat models, plain strings otherwise."""
    if chat:
        return {
            "prompt": [{"role": "user", "content": pair["query"]}],
            "chosen": [{"role": "assistant", "content": pair["chosen"]}],
            "rejected": [{"role": "assistant", "content": pair["rejected"]}],
        }
    return {"prompt": pair["query"], "chosen": " " + pair["chosen"], "rejected": " " + pair["rejected"]}


def _revision(base: str, model) -> str:
    """The Hub commit of the base model, or a hash of a local folder's weights."""
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return str(commit)
    folder = Path(base)
    digest = hashlib.sha256()
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        with weights.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return f"local-sha256:{digest.hexdigest()}"
