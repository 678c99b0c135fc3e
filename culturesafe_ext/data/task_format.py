"""The target task's format, read from lm-eval itself: example docs, and rendering by the task's own functions.

Why through lm-eval: a synthesized doc is rendered by the task's ``doc_to_text`` / ``doc_to_target`` /
``doc_to_choice`` (and its description, via ``fewshot_context`` with no shots), so a training prompt is the
very prompt lm-eval sends at evaluation and the two cannot drift apart. Example docs come from a split that is
not the evaluated one (few-shot, train, validation) or from ``--examples FILE``; never from the evaluated split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturesafe_ext.data import textio

log = logging.getLogger("culturesafe.synthesize")
OUTPUT_TYPES = ("multiple_choice", "generate_until", "loglikelihood")
CULTURE_FIELDS = ("country", "culture")  # a doc field naming its culture (router evaluation on the task)


class TaskFormatError(ValueError):
    """The task cannot be used for synthesis; one line naming the task and what to do."""


class RenderError(ValueError):
    """A doc the task's own functions cannot render (the reason is the message)."""


@dataclass
class TaskFormat:
    """An lm-eval task as the synthesis sees it."""

    name: str
    task: Any  # lm_eval.api.task.ConfigurableTask
    output_type: str
    description: str
    eval_split: str
    examples_from: str
    example_docs: list[dict] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The doc schema: the example docs' keys, in the first example's order."""
        seen: dict[str, None] = {}
        for doc in self.example_docs:
            seen.update(dict.fromkeys(doc))
        return list(seen)

    def key_types(self) -> dict[str, type]:
        return {k: type(self.example_docs[0].get(k)) for k in self.keys if k in self.example_docs[0]}

    def render(self, doc: dict) -> tuple[str, str]:
        """(prompt, completion) exactly as lm-eval builds them for a zero-shot request; :class:`RenderError`."""
        task = self.task
        try:
            prompt = task.fewshot_context(doc=doc, num_fewshot=0)
            target = task.doc_to_target(doc)
            choices = task.doc_to_choice(doc) if (self.output_type == "multiple_choice" or _has_choices(task)) else None
        except Exception as err:  # the task's own functions: any error means the doc is not in its schema
            raise RenderError(f"{type(err).__name__}: {' '.join(str(err).split())[:200]}") from None
        if not isinstance(prompt, str) or not prompt.strip():
            raise RenderError("the task renders an empty prompt")
        answer = _answer(target, choices)
        delimiter = task.config.target_delimiter if task.config.target_delimiter is not None else " "
        return prompt, delimiter + answer

    def eval_docs(self) -> list[dict]:
        """Every doc of the evaluated split, processed as lm-eval evaluates it."""
        return [dict(d) for d in self.task.eval_docs]


def _has_choices(task: Any) -> bool:
    return getattr(task.config, "doc_to_choice", None) is not None


def _answer(target: Any, choices: list[str] | None) -> str:
    if isinstance(target, list):
        if not target:
            raise RenderError("the task's target is an empty list")
        target = target[0]
    if choices is not None:
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c.strip() for c in choices):
            raise RenderError(f"choices {choices!r} are not a list of non-empty strings")
        if isinstance(target, bool) or not isinstance(target, (int, str)):
            raise RenderError(f"target {target!r} is neither a choice index nor a choice")
        if isinstance(target, int):
            if not 0 <= target < len(choices):
                raise RenderError(f"target index {target} is outside the {len(choices)} choices")
            return choices[target]
        if target not in choices:
            if target.strip().isdigit() and 0 <= int(target) < len(choices):
                return choices[int(target)]
            raise RenderError(f"target {target[:60]!r} is not one of the choices")
        return target
    if target is None or (isinstance(target, str) and not target.strip()):
        raise RenderError("the task renders an empty target")
    return str(target)


def load_task_format(
    name: str,
    include_path: str | None = None,
    metadata: dict | None = None,
    examples: Path | None = None,
    n_examples: int = 3,
    need_examples: bool = True,
) -> TaskFormat:
    """Load ``name`` through lm-eval's ``TaskManager`` and take ``n_examples`` docs from a non-evaluated split."""
    from lm_eval.api.task import Task

    from culturesafe_ext.lm_eval_internals import cache_jinja_templates

    cache_jinja_templates()
    manager = _task_manager(name, include_path, metadata)
    if name not in manager.all_tasks:
        raise TaskFormatError(
            f"--task {name}: lm-eval does not know this task (check the name with `lm_eval ls tasks`; a task of your "
            "own needs --include-path DIR)"
        )
    try:
        loaded = manager.load([name])  # flat {"tasks": {...}, "groups": {...}} (load_task_or_group is deprecated)
    except Exception as err:  # the task's own dataset loader or YAML: one line, naming the task
        raise TaskFormatError(f"--task {name}: lm-eval could not build it: {' '.join(str(err).split())}") from None
    task = loaded["tasks"].get(name)
    if not isinstance(task, Task) or loaded.get("groups") or len(loaded["tasks"]) != 1:
        raise TaskFormatError(f"--task {name}: a group or tag of tasks; name one of its tasks")
    output_type = task.config.output_type
    if output_type not in OUTPUT_TYPES:
        supported = ", ".join(OUTPUT_TYPES)
        raise TaskFormatError(f"--task {name}: output type {output_type!r} is not supported ({supported})")
    if getattr(task, "multiple_input", False):
        raise TaskFormatError(f"--task {name}: tasks with one context per choice are not supported")
    eval_split = task.config.test_split or task.config.validation_split
    fmt = TaskFormat(
        name=name,
        task=task,
        output_type=output_type,
        description=str(task.config.description or ""),
        eval_split=str(eval_split),
        examples_from="",
    )
    if not need_examples:  # re-checking leakage needs only the evaluation docs
        return fmt
    if examples is not None:
        fmt.example_docs = read_examples(examples)[:n_examples]
        fmt.examples_from = str(examples)
    else:
        split, docs = _non_eval_docs(task, eval_split)
        if split is None:
            raise TaskFormatError(
                f"--task {name}: no split other than the evaluated one ({eval_split}) to take example docs from; "
                "give --examples FILE (a JSONL of a few docs in the task's format, not taken from the evaluated split)"
            )
        fmt.example_docs = [dict(d) for d in list(docs)[:n_examples]]
        fmt.examples_from = f"split {split!r}"
    if not fmt.example_docs:
        raise TaskFormatError(f"--task {name}: no example docs in {fmt.examples_from}")
    for n, doc in enumerate(fmt.example_docs):
        try:
            fmt.render(doc)
        except RenderError as err:
            where = f"example doc {n} of {fmt.examples_from}"
            raise TaskFormatError(f"--task {name}: {where} does not render: {err}") from None
    return fmt


def _task_manager(name: str, include_path: str | None, metadata: dict | None) -> Any:
    """lm-eval's ``TaskManager`` that knows ``name``: first one over our tasks and ``include_path`` alone, as the
    leaderboard's does (indexing lm-eval's own ~14.7K task entries costs 7-20 s a process here, paid by every
    ``synthesize`` and ``train ... --items``), else the full one (lm-eval's own tasks). Precedence is lm-eval's:
    a task in ``include_path`` wins over ours either way."""
    from lm_eval.tasks import TaskManager

    from culturesafe_ext.plugin import tasks_dir

    paths = [str(tasks_dir()), *([include_path] if include_path else [])]
    quick = TaskManager(include_path=paths, include_defaults=False, metadata=metadata)
    if name in quick.all_tasks:
        return quick
    return TaskManager(include_path=include_path, metadata=metadata)


def _non_eval_docs(task: Any, eval_split: str | None) -> tuple[str | None, Any]:
    config = task.config
    fewshot_split = getattr(getattr(task, "fewshot_cfg", None), "split", None) or config.fewshot_split
    candidates = [
        (fewshot_split, "fewshot_docs"),
        (config.training_split, "training_docs"),
        (config.validation_split, "validation_docs"),
    ]
    for split, method in candidates:
        if split and split != eval_split:
            docs = getattr(task, method)()
            if docs is not None and len(docs):
                return split, docs
    return None, None


def read_examples(path: Path) -> list[dict]:
    """Example docs from a JSONL file (one JSON object a line); errors name the file and line."""
    if not Path(path).is_file():
        raise TaskFormatError(f"--examples {path}: no such file")
    docs = []
    for line_no, record in textio.read_jsonl(Path(path)):
        if not isinstance(record, dict):
            raise TaskFormatError(f"{path}:{line_no}: expected a JSON object (a doc of the task)")
        docs.append(record)
    return docs


def example_block(fmt: TaskFormat, leave_out: tuple[str, ...] = ()) -> str:
    """The example docs as JSON lines for a prompt (fields the pipeline fills itself left out)."""
    return "\n".join(
        json.dumps({k: v for k, v in d.items() if k not in leave_out}, ensure_ascii=False) for d in fmt.example_docs
    )
