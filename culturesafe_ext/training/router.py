"""``culturesafe train router``: a culture classifier over prompts, with held-out accuracy and confusion matrix.

Inputs are the task-format prompts of :mod:`.task_items` (what lm-eval sends the model), labelled with
their culture. Features are the base model's mean-pooled last hidden state; the classifier is
scikit-learn's ``LogisticRegression`` (see :mod:`culturesafe_ext.routing.classifier`). It is trained
on the training descriptions' prompts and scored on the held-out descriptions' prompts, so the accuracy
is on cultures' unseen descriptions. Writes ``OUT/router.json``, ``OUT/router_eval.json`` (accuracy,
chance, confusion matrix, counts) and the training manifest.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from culturesafe_ext.cli_types import positive_float, positive_int
from culturesafe_ext.data import splits
from culturesafe_ext.data.manifests import ROUTER_EVAL_FILE, SPLIT_FILE
from culturesafe_ext.routing.classifier import FEATURE, CultureRouter, hf_forward, mean_pooled
from culturesafe_ext.training import synthetic, task_items
from culturesafe_ext.training.cli import add_recipe, recipe_args


def train_router(
    base: str,
    data: str,
    out: Path,
    heldout_fraction: float = 0.5,
    seed: int = 0,
    split_file: str | None = None,
    batch_size: int = 16,
    c: float = 1.0,
    prompt_format: str = "raw",
    items_dir: str | None = None,
) -> dict:
    """Fit, score on held-out descriptions, save; return the evaluation written to ``router_eval.json``.

    ``items_dir``: fit on synthesized items and score on the target task's evaluation prompts whose docs name
    a trained culture (router accuracy per task); the task's docs must carry a ``country`` or ``culture``."""
    import torch
    from sklearn.metrics import confusion_matrix
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out)
    facts: dict = {}
    if items_dir:
        if split_file:
            raise ValueError("--split and --items exclude each other: synthesized items train on no description")
        train, facts = synthetic.synthetic_items(items_dir)
        split = synthetic.empty_split(items_dir)
        heldout = synthetic.evaluation_items(items_dir, {i.culture for i in train})
        if not heldout:
            raise ValueError(
                f"{facts['target_task']}: no evaluation doc names a trained culture in a country/culture field, so "
                "the router cannot be scored on the task"
            )
    else:
        rows = task_items.load_rows(data)
        split = (
            splits.DescriptionSplit.load(split_file)
            if split_file
            else splits.split_descriptions(rows, heldout_fraction, seed, source=data)
        )
        train = task_items.task_items(rows, split.train)
        heldout = task_items.task_items(rows, split.heldout)
    split.save(out / SPLIT_FILE)

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = task_items.formatted(train, tokenizer, prompt_format)
    heldout = task_items.formatted(heldout, tokenizer, prompt_format)
    # on a GPU in the checkpoint's own dtype (as hf-router runs it); on the CPU in float32 (fast there)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = "auto" if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(device).eval()
    forward = hf_forward(model)
    x_train = mean_pooled(forward, tokenizer, [i.prompt for i in train], batch_size, device=device, progress=True)
    y_train = [i.culture for i in train]
    router = CultureRouter.fit(
        x_train,
        y_train,
        c=c,
        seed=seed,
        base_model=base,
        data=items_dir or data,
        max_length=512,
        prompt_format=prompt_format,
        **facts,
    )

    predicted = router.predict(
        mean_pooled(forward, tokenizer, [i.prompt for i in heldout], batch_size, device=device, progress=True)
    )
    truth = [i.culture for i in heldout]
    labels = sorted(set(router.classes) | set(truth))
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    by_kind = {
        kind: {
            "correct": sum(p == t for p, t, i in zip(predicted, truth, heldout, strict=True) if i.kind == kind),
            "n": sum(i.kind == kind for i in heldout),
        }
        for kind in (sorted({i.kind for i in heldout}) if items_dir else task_items.KINDS)
    }
    majority = Counter(truth).most_common(1)[0][1] / len(truth) if truth else 0.0
    evaluation = {
        "heldout_accuracy": correct / len(truth) if truth else None,
        "n_heldout": len(truth),
        "n_correct": correct,
        "n_train": len(train),
        "chance_uniform": 1.0 / len(router.classes),
        "chance_majority": majority,
        "labels": labels,
        "confusion_matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
        "confusion_matrix_axes": "rows = true culture, columns = predicted culture, in the order of labels",
        "by_kind": by_kind,
        "feature": FEATURE,
        "prompt_format": prompt_format,
        "base_model": base,
        "split": str(out / SPLIT_FILE),
        "heldout": f"evaluation prompts of {facts['target_task']}" if items_dir else "held-out descriptions",
        **facts,
    }
    router.info.update(heldout_accuracy=evaluation["heldout_accuracy"], n_train=len(train), n_heldout=len(truth))
    router.save(out)
    (out / ROUTER_EVAL_FILE).write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    splits.write_training_manifest(
        out,
        split,
        set() if items_dir else {i.description_id for i in train},  # synthesized items: no benchmark description
        base_model=base,
        recipe="culturesafe train router",
        heldout_accuracy=evaluation["heldout_accuracy"],
        **facts,
    )
    return evaluation


def add_parser(recipes: argparse._SubParsersAction) -> None:
    parser = add_recipe(
        recipes,
        "router",
        "a culture router (linear head on pooled hidden states) with held-out accuracy",
        __doc__,
        "output folder for the router",
        "the adapters' split.json (recommended: the same split)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--C", dest="c", type=positive_float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--items", help="fit on a `culturesafe synthesize` folder; score on its task's evaluation")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    ev = train_router(
        args.base,
        args.data,
        args.out,
        batch_size=args.batch_size,
        c=args.c,
        **recipe_args(args),
        items_dir=args.items,
    )
    print(
        f"router held-out accuracy {ev['heldout_accuracy']:.3f} ({ev['n_correct']}/{ev['n_heldout']} "
        f"{ev['heldout']}; chance {ev['chance_uniform']:.3f}, majority {ev['chance_majority']:.3f})"
    )
    print("confusion matrix (rows true, columns predicted):", ", ".join(ev["labels"]))
    for label, row in zip(ev["labels"], ev["confusion_matrix"], strict=True):
        print(f"  {label:>12} {row}")
    print(f"router in {args.out}")
    return 0
