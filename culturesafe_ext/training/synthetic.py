"""Training on synthesized items (``culturesafe synthesize``) instead of the benchmark's own training split.

The items are already rendered by the target task's own functions (prompt, completion), so they become
:class:`~culturesafe_ext.training.task_items.TaskItem` as they are; reading them re-checks that none leaks an
evaluation doc of the target task (:func:`culturesafe_ext.data.synthetic_items.read_items`). No benchmark
description is trained on, so the split recorded in the manifests is empty and names the items folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from culturesafe_ext.data import splits
from culturesafe_ext.data.adaculturesafe_schema import slug
from culturesafe_ext.data.synthetic_items import read_items
from culturesafe_ext.data.task_format import CULTURE_FIELDS
from culturesafe_ext.training.task_items import TaskItem

log = logging.getLogger("culturesafe")
ALL_CULTURES = "all"  # the adapter of --all-cultures; evaluate with routing=fixed:all
EVALUATION = "evaluation"  # the kind of the target task's evaluation prompts (router scoring)


def synthetic_items(folder: str | Path) -> tuple[list[TaskItem], dict]:
    """The items as task items (kind = query type), and the facts for the manifests."""
    items, report = read_items(Path(folder))
    task_items = [TaskItem(i.prompt, i.completion, i.culture, i.id, i.kind) for i in items]
    facts = {
        "items": str(folder),
        "target_task": report["task"]["name"],
        "synthesis": {
            "queries": report["settings"]["queries"],
            "generator": report["generator"],
            "search": report["search"]["backend"],
            "items": len(items),
            "leaked_in_output": report["leakage"]["leaked_in_output"],
            "leakage_rechecked_against": report["task"]["name"],
        },
    }
    return task_items, facts


def empty_split(folder: str | Path) -> splits.DescriptionSplit:
    """No benchmark description is trained on: an empty split naming where the items came from."""
    return splits.DescriptionSplit(train=[], heldout=[], seed=0, heldout_fraction=0.0, source=f"synthesized:{folder}")


def evaluation_items(folder: str | Path, cultures: set[str]) -> list[TaskItem]:
    """The target task's evaluation prompts whose doc names one of ``cultures`` (router scoring, per task)."""
    from culturesafe_ext.data.synthetic_items import read_report
    from culturesafe_ext.data.task_format import load_task_format

    task = read_report(Path(folder))["task"]
    fmt = load_task_format(
        task["name"], task.get("include_path"), task.get("metadata"), examples=None, need_examples=False
    )
    out = []
    for n, doc in enumerate(fmt.eval_docs()):
        name = next((doc[k] for k in CULTURE_FIELDS if isinstance(doc.get(k), str)), None)
        if name is not None and slug(name) in cultures:
            prompt, completion = fmt.render(doc)
            out.append(TaskItem(prompt, completion, slug(name), f"{task['name']}#{n}", EVALUATION))
    return out


def progress_callback(culture: str, max_steps: int) -> Any:
    """A Trainer callback drawing one tqdm bar for this adapter: its culture, steps of max, time left, loss."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class CultureProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar = tqdm(total=max_steps, desc=f"adapter {culture}", unit="step")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.bar.set_postfix_str(f"loss {logs['loss']:.3f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.close()

    return CultureProgress()
