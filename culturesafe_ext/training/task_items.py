"""Training descriptions turned into task-format items (CultureManager's per-culture training data).

Every item is a prompt exactly as an lm-eval task sends it (built with the tasks' own ``doc_to_text``
functions, so training and evaluation formats cannot drift apart) and a target completion:

- knowledge row, loglikelihood format: ``Question: ...\\nAnswer:`` -> `` <gold option text>``;
- knowledge row, the paper's generative format: the lettered question -> ``{"answer": "<gold letter>"}``;
- safety row: the adversarial query (scene + requirement) -> a short respectful answer that states the
  custom from the row's own description first (:func:`respectful_answer`). It is a template, not a
  model-written answer: simple, grounded in the gold description, and the same for every culture.

Items of held-out descriptions are never produced for training (the caller passes the training ids).

``prompt_format="chat"`` (:func:`formatted`) gives the items as ``lm_eval --apply_chat_template`` sends
them: the prompt as one user turn through the tokenizer's chat template with the generation prompt, and
no target delimiter before the completion (lm-eval drops it under a chat template). Adapters and the
router record the format they were trained on; ``hf-router`` warns when a run uses the other one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from culturesafe_ext.data.adaculturesafe_schema import slug
from culturesafe_ext.tasks import taxonomy
from culturesafe_ext.tasks.knowledge import doc_to_text_gen, doc_to_text_mc

# An item's kind is the name of the task family whose prompt it copies (the group after ``adaculturesafe_``):
# the taxonomy's one name for each family, also the key of the manifests' per-kind counts.
KNOWLEDGE_MC, KNOWLEDGE_GEN, SAFETY = (
    taxonomy.family(taxonomy.ADACULTURESAFE, label).infix for label in ("mc", "gen", "plain")
)
KINDS = (KNOWLEDGE_MC, KNOWLEDGE_GEN, SAFETY)
PROMPT_FORMATS = ("raw", "chat")  # raw: lm_eval's default; chat: lm_eval --apply_chat_template
TARGET_DELIMITER = " "  # lm-eval's default, which our tasks keep


@dataclass(frozen=True)
class TaskItem:
    prompt: str
    completion: str
    culture: str  # slug of the row's country: the adapter and router label
    description_id: str
    kind: str


def respectful_answer(row: Mapping[str, Any]) -> str:
    place = row.get("location") or row["country"]
    return (
        f"Before answering, it helps to know the local custom in {place}: {row['description'].strip()} "
        "I will keep my answer respectful of that custom and suggest an approach that does not offend."
    )


def items_for_row(row: Mapping[str, Any]) -> list[TaskItem]:
    """The task-format items of one dataset row (a knowledge MCQ gives two, a safety query one)."""
    for field in ("country", "description_id", "description"):
        if not row.get(field):
            raise ValueError(f"row {row.get('id', '?')!r}: field {field!r} is empty; cannot make a training item")
    culture, desc = slug(row["country"]), row["description_id"]
    if "question" in row:
        gold = row["options"][row["gold_index"]]
        return [
            TaskItem(doc_to_text_mc(dict(row)), f" {gold}", culture, desc, KNOWLEDGE_MC),
            TaskItem(
                doc_to_text_gen(dict(row)), json.dumps({"answer": row["gold_letter"]}), culture, desc, KNOWLEDGE_GEN
            ),
        ]
    if "query" in row:
        return [TaskItem(row["query"], " " + respectful_answer(row), culture, desc, SAFETY)]
    raise ValueError(f"row {row.get('id', '?')!r} is neither a knowledge row (question) nor a safety row (query)")


def task_items(rows: Iterable[Mapping[str, Any]], descriptions: Iterable[str]) -> list[TaskItem]:
    """Items of the rows whose description is in ``descriptions``."""
    keep = set(descriptions)
    return [item for row in rows if row["description_id"] in keep for item in items_for_row(row)]


def as_user_turn(tokenizer: Any, text: str) -> str:
    """``text`` as one user turn with the generation prompt: what lm-eval's ``HFLM.apply_chat_template``
    makes of a zero-shot request without a system instruction."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')} has no chat template; use raw prompts")
    turn = [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)


def formatted(items: list[TaskItem], tokenizer: Any, prompt_format: str) -> list[TaskItem]:
    """The items in ``prompt_format`` (see the module docstring); ``raw`` returns them unchanged."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt format {prompt_format!r}: expected one of {', '.join(PROMPT_FORMATS)}")
    if prompt_format == "raw":
        return list(items)
    return [
        replace(
            item,
            prompt=as_user_turn(tokenizer, item.prompt),
            completion=item.completion.removeprefix(TARGET_DELIMITER),
        )
        for item in items
    ]


def load_rows(data: str) -> list[dict]:
    """Knowledge and safety rows of a dataset, through the one loader."""
    from culturesafe_ext.data.loader import load_adaculturesafe

    rows: list[dict] = []
    for config in ("knowledge", "safety"):
        rows += list(load_adaculturesafe(config, culturesafe_data=data)["test"])
    return rows
