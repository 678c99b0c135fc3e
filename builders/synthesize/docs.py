"""Checking one generator reply of docs: the task's schema, the evidence span, the MCQ rules, the rendering.

Every violation is a problem string (for the engine's feedback turn and the report) and a counted rejection
reason (:data:`REASONS`), so nothing the generator wrote is dropped unreported. A doc is kept only when it has
exactly the example docs' keys with the same value types, its evidence occurs in the passage (the mechanical
part of "grounded"), and the task's own functions render it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from culturesafe_ext.data.task_format import RenderError, TaskFormat
from culturesafe_ext.data.textio import norm

ID_FIELDS = ("id", "doc_id", "description_id")  # filled by the pipeline, never by the generator
NOT_SCHEMA, NO_EVIDENCE, NOT_GROUNDED, NOT_RENDERED, BAD_OPTIONS = (
    "not the task's schema",
    "no evidence span",
    "evidence not in the passage",
    "task cannot render it",
    "options not 4 distinct",
)
REASONS = (NOT_SCHEMA, NO_EVIDENCE, NOT_GROUNDED, NOT_RENDERED, BAD_OPTIONS)


def is_mcq(fmt: TaskFormat) -> bool:
    """Our knowledge MCQ schema: a list of options and a gold index (balanced with ``balance_gold``)."""
    types = fmt.key_types()
    return types.get("options") is list and types.get("gold_index") is int


def _type_ok(value: Any, want: type) -> bool:
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def _schema_problems(doc: Any, fmt: TaskFormat, where: str) -> list[str]:
    if not isinstance(doc, dict):
        return [f"{where}doc: expected an object with the keys {', '.join(fmt.keys)}"]
    wanted = [k for k in fmt.keys if k not in ID_FIELDS]
    problems = [f"{where}doc.{k}: missing" for k in wanted if k not in doc]
    problems += [f"{where}doc.{k}: not a key of the task's docs" for k in doc if k not in fmt.keys]
    for key, want in fmt.key_types().items():
        if key in doc and key not in ID_FIELDS and want is not type(None) and not _type_ok(doc[key], want):
            problems.append(f"{where}doc.{key}: expected {want.__name__}, got {type(doc[key]).__name__}")
    return problems


def _mcq_problems(doc: dict, where: str) -> list[str]:
    options = doc.get("options")
    if not isinstance(options, list) or len(options) != 4 or not all(isinstance(o, str) and o.strip() for o in options):
        return [f"{where}doc.options: expected 4 non-empty strings"]
    if len({norm(o) for o in options}) != 4:
        return [f"{where}doc.options: two options are the same"]
    if not 0 <= doc["gold_index"] < 4:
        return [f"{where}doc.gold_index: {doc['gold_index']} is not 0-3"]
    return []


def fill_ids(doc: dict, fmt: TaskFormat, ident: str) -> dict:
    """The pipeline's own identifiers; ``gold_letter`` made to agree with ``gold_index``."""
    out = dict(doc)
    for key in ID_FIELDS:
        if key in fmt.keys:
            numeric = int(hashlib.sha256(ident.encode()).hexdigest()[:8], 16)
            out[key] = numeric if fmt.key_types().get(key) is int else ident
    if "gold_letter" in fmt.keys and isinstance(out.get("gold_index"), int):
        out["gold_letter"] = "ABCDEFGHIJ"[out["gold_index"] % 10]
    return out


def docs_in_reply(
    obj: dict, fmt: TaskFormat, passage: str, ident: str, reasons: Counter[str]
) -> tuple[list[dict], list[str]]:
    """Valid docs of one reply ``{"docs": [{"doc": {...}, "evidence": "..."}]}`` and the others' problems.

    ``passage``: as :func:`norm` (casefolded) gives it, normalised once by the caller for all its replies.

    A valid doc comes back as ``{"doc", "evidence", "prompt", "completion"}``; ``reasons`` counts rejections.
    """
    entries = obj.get("docs")
    if not isinstance(entries, list) or not entries:
        reasons[NOT_SCHEMA] += 1
        return [], ["docs: missing, empty or not a list"]
    mcq = is_mcq(fmt)
    valid, problems = [], []
    for n, entry in enumerate(entries):
        where = f"docs[{n}]."
        if not isinstance(entry, dict):
            reasons[NOT_SCHEMA] += 1
            problems.append(f"docs[{n}]: expected an object with doc and evidence")
            continue
        doc, evidence = entry.get("doc"), entry.get("evidence")
        found = _schema_problems(doc, fmt, where)
        reason = NOT_SCHEMA
        if not found and mcq:
            found, reason = _mcq_problems(doc, where), BAD_OPTIONS
        if not found and (not isinstance(evidence, str) or not evidence.strip()):
            found, reason = [f"{where}evidence: missing or empty"], NO_EVIDENCE
        if not found and norm(evidence, casefold=True) not in passage:
            found, reason = [f"{where}evidence: not a span of the passage"], NOT_GROUNDED
        if found:
            reasons[reason] += 1
            problems += found
            continue
        doc = fill_ids(doc, fmt, f"{ident}/{n}")
        try:
            prompt, completion = fmt.render(doc)
        except RenderError as err:
            reasons[NOT_RENDERED] += 1
            problems.append(f"{where}doc: the task cannot render it: {err}")
            continue
        valid.append({"doc": doc, "evidence": evidence.strip(), "prompt": prompt, "completion": completion})
    return valid, problems


def queries_in_reply(obj: dict, reasons: Counter[str]) -> tuple[list[str], list[str]]:
    """Valid queries of one reply ``{"queries": ["...", ...]}`` and the others' problems."""
    entries = obj.get("queries")
    if not isinstance(entries, list) or not entries:
        reasons["queries: not a list"] += 1
        return [], ["queries: missing, empty or not a list"]
    valid, problems = [], []
    for n, q in enumerate(entries):
        if not isinstance(q, str) or not q.strip():
            reasons["query: empty or not text"] += 1
            problems.append(f"queries[{n}]: expected non-empty text")
        elif len(q) > 300:
            reasons["query: too long"] += 1
            problems.append(f"queries[{n}]: longer than 300 characters")
        else:
            valid.append(" ".join(q.split()))
    return valid, problems
