"""Synthesized training items (``culturesafe synthesize``), as the training recipes read them.

The folder holds ``items.jsonl`` (one rendered item a line: prompt, completion, culture, kind, provenance) and
``synthesis_report.json``, which records the target task and ``leakage.leaked_in_output == 0``. Reading the
items re-checks that property against the target task's evaluation docs as lm-eval loads them now (SimHash and
13-grams, :mod:`.leakage`), so a set synthesized against another version of the task cannot leak silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from culturesafe_ext.data import textio

ITEMS_FILE = "items.jsonl"
REPORT_FILE = "synthesis_report.json"
REQUIRED = ("id", "prompt", "completion", "culture", "kind", "task")


class SyntheticItemsError(ValueError):
    """A synthesized folder that cannot be trained on; one line naming the file, record and field."""


@dataclass(frozen=True)
class SyntheticItem:
    id: str
    prompt: str
    completion: str
    culture: str
    kind: str  # the query type the passage came from: "specific" or "agnostic"
    task: str
    doc: dict  # the doc in the task's schema (what the leakage re-check compares)


def read_report(folder: Path) -> dict:
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        raise SyntheticItemsError(f"--items {folder}: no {REPORT_FILE} (write it with `culturesafe synthesize`)")
    return textio.load_json(path)  # type: ignore[return-value]


def read_items(folder: Path, recheck: bool = True) -> tuple[list[SyntheticItem], dict]:
    """The items and the synthesis report; refuses a folder whose report or re-check finds a leaked item."""
    folder = Path(folder)
    report = read_report(folder)
    leaked = report.get("leakage", {}).get("leaked_in_output")
    if leaked != 0:
        raise SyntheticItemsError(f"{folder / REPORT_FILE}: leakage.leaked_in_output is {leaked!r}, not 0")
    items = []
    for line, record in textio.read_jsonl(folder / ITEMS_FILE):
        if not isinstance(record, dict):
            raise SyntheticItemsError(f"{folder / ITEMS_FILE}:{line}: expected a JSON object")
        for key in REQUIRED:
            if not isinstance(record.get(key), str) or (key != "completion" and not record[key].strip()):
                raise SyntheticItemsError(f"{folder / ITEMS_FILE}:{line}: field {key!r} missing or not text")
        if not isinstance(record.get("doc"), dict):
            raise SyntheticItemsError(f"{folder / ITEMS_FILE}:{line}: field 'doc' missing or not an object")
        items.append(SyntheticItem(**{k: record[k] for k in REQUIRED}, doc=record["doc"]))
    if not items:
        raise SyntheticItemsError(f"{folder / ITEMS_FILE}: no items")
    if recheck:
        recheck_leakage(items, report)
    return items, report


def recheck_leakage(items: list[SyntheticItem], report: dict) -> int:
    """Compare every item with the target task's evaluation docs again; raise naming the first leak."""
    from culturesafe_ext.data.leakage import content_text, find_leaks
    from culturesafe_ext.data.task_format import load_task_format

    task = report["task"]
    fmt = load_task_format(
        task["name"],
        include_path=task.get("include_path"),
        metadata=task.get("metadata"),
        examples=None,
        n_examples=0,
        need_examples=False,
    )
    keys = task["schema"]
    evaluation = [content_text(d, keys) for d in fmt.eval_docs()]
    leaks = find_leaks([content_text(i.doc, keys) for i in items], evaluation, int(report["leakage"]["threshold"]))
    if leaks:
        first = leaks[0]
        raise SyntheticItemsError(
            f"item {items[first.index].id} leaks evaluation doc #{first.twin_index} of {task['name']} ({first.how}): "
            f"{json.dumps(evaluation[first.twin_index][:120])}; re-run `culturesafe synthesize` against this task"
        )
    return len(evaluation)
