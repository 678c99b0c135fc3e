"""``culturesafe train adapters``: one LoRA adapter per culture (CultureManager), split by description.

The dataset's descriptions are split (stratified by country, seeded) and saved as ``OUT/split.json``;
each culture's adapter is trained with peft + transformers' ``Trainer`` on the task-format items of its
*training* descriptions only (:mod:`.task_items`), loss on the completion tokens, and saved to
``OUT/<culture>/`` with a training manifest. Evaluate the held-out part with
``--metadata '{"culturesafe_split": "OUT/split.json"}'``; the loader refuses any trained description.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from culturesafe_ext.cli_types import positive_float, positive_int
from culturesafe_ext.data import splits
from culturesafe_ext.data.manifests import ADAPTERS_SUMMARY_FILE, SPLIT_FILE
from culturesafe_ext.training import task_items
from culturesafe_ext.training.cli import add_recipe, recipe_args

log = logging.getLogger("culturesafe")

SUMMARY_FILE = ADAPTERS_SUMMARY_FILE  # the names live in data/manifests.py, read by hf-router too


def tokenize_items(
    tokenizer: Any, items: list[task_items.TaskItem], max_length: int = 512, prompt_format: str = "raw"
) -> list[dict]:
    """input_ids and labels with the prompt masked (-100): the loss is on the completion only.

    A chat-formatted prompt already carries the template's special tokens, so none are added to it.
    """
    rows = []
    for item in items:
        prompt = tokenizer(item.prompt, add_special_tokens=prompt_format == "raw")["input_ids"]
        completion = tokenizer(item.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt + completion)[:max_length]
        labels = ([-100] * len(prompt) + completion)[:max_length]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def train_adapters(
    base: str,
    data: str,
    out: Path,
    heldout_fraction: float = 0.5,
    seed: int = 0,
    split_file: str | None = None,
    cultures: list[str] | None = None,
    max_steps: int = 100,
    learning_rate: float = 2e-4,
    batch_size: int = 4,
    rank: int = 8,
    alpha: int = 16,
    target_modules: str = "all-linear",
    prompt_format: str = "raw",
) -> dict:
    """Train and save one adapter per culture; return the summary also written to ``OUT/adapters.json``."""
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    out = Path(out)
    rows = task_items.load_rows(data)
    if split_file:
        split = splits.DescriptionSplit.load(split_file)
    else:
        split = splits.split_descriptions(rows, heldout_fraction, seed, source=data)
    split.save(out / SPLIT_FILE)
    items = task_items.task_items(rows, split.train)
    available = sorted({i.culture for i in items})
    chosen = sorted(available if not cultures else cultures)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(f"--cultures {', '.join(unknown)}: no training items (the data has: {', '.join(available)})")

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    items = task_items.formatted(items, tokenizer, prompt_format)
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    summary: dict[str, Any] = {
        "base_model": base,
        "data": data,
        "split": str(out / SPLIT_FILE),
        "prompt_format": prompt_format,
        "adapters": {},
    }
    for culture in chosen:
        mine = [i for i in items if i.culture == culture]
        train_set = datasets.Dataset.from_list(tokenize_items(tokenizer, mine, prompt_format=prompt_format))
        config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=target_modules, task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, config)
        with tempfile.TemporaryDirectory() as scratch:
            args = TrainingArguments(
                output_dir=scratch,
                max_steps=max_steps,
                per_device_train_batch_size=batch_size,
                learning_rate=learning_rate,
                logging_steps=max(1, max_steps // 5),
                save_strategy="no",
                report_to=[],
                seed=seed,
                disable_tqdm=True,
            )
            result = Trainer(model=peft_model, args=args, train_dataset=train_set, data_collator=collator).train()
        folder = out / culture
        peft_model.save_pretrained(folder)
        trained_on = sorted({i.description_id for i in mine})
        info = {
            "culture": culture,
            "n_items": len(mine),
            "items_by_kind": {k: sum(i.kind == k for i in mine) for k in task_items.KINDS},
            "n_descriptions": len(trained_on),
            "max_steps": max_steps,
            "prompt_format": prompt_format,
            "train_loss": float(result.training_loss),
        }
        splits.write_training_manifest(
            folder, split, trained_on, base_model=base, recipe="culturesafe train adapters", **info
        )
        summary["adapters"][culture] = info
        log.info("adapter %s: %d items, loss %.3f -> %s", culture, len(mine), info["train_loss"], folder)
        model = peft_model.unload()  # the untouched base again, for the next culture
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def add_parser(recipes: argparse._SubParsersAction) -> None:
    parser = add_recipe(
        recipes,
        "adapters",
        "one LoRA adapter per culture on its training descriptions (CultureManager)",
        __doc__,
        "output folder: OUT/<culture>/ per adapter",
        "reuse a saved split.json instead of drawing one",
    )
    parser.add_argument("--cultures", help="comma-separated culture slugs (default: every country in the data)")
    parser.add_argument("--max-steps", type=positive_int, default=100)
    parser.add_argument("--learning-rate", type=positive_float, default=2e-4)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--rank", type=positive_int, default=8)
    parser.add_argument("--alpha", type=positive_int, default=16)
    parser.add_argument("--target-modules", default="all-linear")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    summary = train_adapters(
        args.base,
        args.data,
        args.out,
        **recipe_args(args),
        cultures=[c.strip() for c in args.cultures.split(",")] if args.cultures else None,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        rank=args.rank,
        alpha=args.alpha,
        target_modules=args.target_modules,
    )
    for culture, info in summary["adapters"].items():
        n_items, n_desc, loss = info["n_items"], info["n_descriptions"], info["train_loss"]
        print(f"{culture}: {n_items} items from {n_desc} descriptions, train loss {loss:.3f}")
    split = json.dumps({"culturesafe_split": str(args.out / SPLIT_FILE)})
    print(f"adapters in {args.out}; evaluate the held-out descriptions with --metadata '{split}'")
    return 0
