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
from dataclasses import replace
from pathlib import Path
from typing import Any

from culturesafe_ext.cli_types import positive_float, positive_int
from culturesafe_ext.data import splits
from culturesafe_ext.data.manifests import ADAPTERS_SUMMARY_FILE, SPLIT_FILE
from culturesafe_ext.training import synthetic, task_items
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
    items_dir: str | None = None,
    all_cultures: bool = False,
    init_from: str | None = None,
) -> dict:
    """Train and save one adapter per culture; return the summary also written to ``OUT/adapters.json``.

    ``items_dir``: train on synthesized items (``culturesafe synthesize``) instead of the dataset's training
    descriptions; ``all_cultures``: one adapter, ``OUT/all/``, on every culture's items (evaluate with
    ``routing=fixed:all``); ``init_from``: start each adapter from ``INIT/<culture>/`` (or ``INIT/all/``), e.g.
    culture-level SFT on task-agnostic items, then adaptation on task-specific ones."""
    import datasets
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    out = Path(out)
    facts: dict[str, Any] = {}
    if items_dir:
        if split_file:
            raise ValueError("--split and --items exclude each other: synthesized items train on no description")
        items, facts = synthetic.synthetic_items(items_dir)
        split = synthetic.empty_split(items_dir)
    else:
        rows = task_items.load_rows(data)
        if split_file:
            split = splits.DescriptionSplit.load(split_file)
        else:
            split = splits.split_descriptions(rows, heldout_fraction, seed, source=data)
        items = task_items.task_items(rows, split.train)
    split.save(out / SPLIT_FILE)
    if all_cultures:
        items = [replace(i, culture=synthetic.ALL_CULTURES) for i in items]
    available = sorted({i.culture for i in items})
    kinds = sorted({i.kind for i in items}) if items_dir else task_items.KINDS
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
        "data": items_dir or data,
        **facts,
        "all_cultures": all_cultures,
        "init_from": init_from,
        "split": str(out / SPLIT_FILE),
        "prompt_format": prompt_format,
        "adapters": {},
    }
    for culture in chosen:
        mine = [i for i in items if i.culture == culture]
        train_set = datasets.Dataset.from_list(tokenize_items(tokenizer, mine, prompt_format=prompt_format))
        if init_from:
            peft_model = PeftModel.from_pretrained(model, str(_init_folder(init_from, culture)), is_trainable=True)
        else:
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
            trainer = Trainer(model=peft_model, args=args, train_dataset=train_set, data_collator=collator)
            trainer.remove_callback(PrinterCallback)  # one bar per culture instead of raw log lines
            trainer.add_callback(synthetic.progress_callback(culture, max_steps))
            result = trainer.train()
        folder = out / culture
        peft_model.save_pretrained(folder)
        trained_on = [] if items_dir else sorted({i.description_id for i in mine})  # synthesized: no description
        info = {
            "culture": culture,
            "n_items": len(mine),
            "items_by_kind": {k: sum(i.kind == k for i in mine) for k in kinds},
            "n_descriptions": len(trained_on),
            "max_steps": max_steps,
            "prompt_format": prompt_format,
            "train_loss": float(result.training_loss),
            "all_cultures": all_cultures,
            "init_from": str(_init_folder(init_from, culture)) if init_from else None,
            **facts,
        }
        splits.write_training_manifest(
            folder, split, trained_on, base_model=base, recipe="culturesafe train adapters", **info
        )
        summary["adapters"][culture] = info
        log.info("adapter %s: %d items, loss %.3f -> %s", culture, len(mine), info["train_loss"], folder)
        model = peft_model.unload()  # the untouched base again, for the next culture
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _init_folder(init_from: str, culture: str) -> Path:
    """The adapter to start ``culture`` from: ``INIT/<culture>/``, else ``INIT/all/`` (an all-culture adapter)."""
    for name in (culture, synthetic.ALL_CULTURES):
        folder = Path(init_from) / name
        if (folder / "adapter_config.json").is_file():
            return folder
    raise ValueError(f"--init-from {init_from}: no {culture}/ or {synthetic.ALL_CULTURES}/ adapter inside")


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
    parser.add_argument("--items", help="train on a `culturesafe synthesize` folder instead of --data's descriptions")
    parser.add_argument(
        "--all-cultures", action="store_true", help="one adapter OUT/all/ on every culture (route with fixed:all)"
    )
    parser.add_argument("--init-from", help="start each adapter from ADAPTERS/<culture>/ (or ADAPTERS/all/)")
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
        items_dir=args.items,
        all_cultures=args.all_cultures,
        init_from=args.init_from,
    )
    for culture, info in summary["adapters"].items():
        n_items, n_desc, loss = info["n_items"], info["n_descriptions"], info["train_loss"]
        source = f"synthesized items of {args.items}" if args.items else f"{n_desc} descriptions"
        print(f"{culture}: {n_items} items from {source}, train loss {loss:.3f}")
    if args.items:
        route = "routing=fixed:all" if args.all_cultures else "routing=learned (with router=DIR) or oracle"
        print(f"adapters in {args.out}; evaluate {summary['target_task']} with --model hf-router ({route})")
        return 0
    split = json.dumps({"culturesafe_split": str(args.out / SPLIT_FILE)})
    print(f"adapters in {args.out}; evaluate the held-out descriptions with --metadata '{split}'")
    return 0
