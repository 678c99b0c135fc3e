"""Human verification round trip: export items for review, import the reviewers' decisions.

Export: ``review.csv`` (one row per item, a ``decision`` column to fill with accept / reject / edit;
for edit, change the item's columns in place) and Label Studio files: ``labelstudio_tasks.json``
(its documented import format, a list of ``{"data": {...}}``) with ``labelstudio_config.xml`` (the
labeling interface: a ``decision`` choice and one ``edit_<field>`` text area per field). Import:
that CSV, or Label Studio's JSON export (tasks with ``annotations[].result``). Only accepted and
edited items are kept, marked ``checked``; a malformed decision names the file, record and field.

:func:`write_labelstudio`, :class:`RecordsError` and the readers' first steps live in
:mod:`culturesafe_ext.data.human_review`, shared with the judge calibration (``culturesafe judge calibrate``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from culturesafe_ext.data import textio
from culturesafe_ext.data.human_review import RecordsError, csv_rows, labelstudio_tasks, write_labelstudio

from .items import LETTERS, check_mcq, check_query, check_references

ACTIONS = ("accept", "reject", "edit")
EDITABLE = {
    "knowledge": ("question", *(f"option_{letter}" for letter in LETTERS), "answer"),
    "safety": ("scene", "requirement"),
    "culturax": ("question", "helpful", "harmless", "honest"),
    "description": ("custom", "location", "description"),
}
ALL_FIELDS = tuple(dict.fromkeys(f for fields in EDITABLE.values() for f in fields))
CSV_COLUMNS = ("id", "kind", "context", *ALL_FIELDS, "decision", "note")


class DecisionError(RecordsError):
    """A decisions file that cannot be applied."""

    what = "the review decisions"


def check_fields(kind: str, fields: dict[str, str]) -> list[str]:
    """Problems of an item's editable fields (an edit must still be a valid item of its kind)."""
    if kind == "knowledge":
        mcq = {
            "question": fields.get("question", ""),
            "options": {letter: fields.get(f"option_{letter}", "") for letter in LETTERS},
            "answer": fields.get("answer", ""),
        }
        problems = check_mcq(mcq, None)[1]
        return [p.replace("options.", "option_") for p in problems]
    if kind == "safety":
        return check_query(fields)[1]
    if kind == "description":
        return [f"{f}: empty" for f in EDITABLE[kind] if not fields.get(f, "").strip()]
    problems = check_references({k: fields.get(k, "") for k in ("helpful", "harmless", "honest")})[1]
    return problems + ([] if fields.get("question", "").strip() else ["question: empty"])


def render(candidate: dict) -> str:
    """The item as a reviewer reads it."""
    f = candidate["fields"]
    if candidate["kind"] == "knowledge":
        options = "\n".join(f"{letter}. {f[f'option_{letter}']}" for letter in LETTERS)
        return f"{f['question']}\n{options}\nGold: {f['answer']}"
    if candidate["kind"] == "safety":
        return f"Scene: {f['scene']}\nRequirement: {f['requirement']}"
    if candidate["kind"] == "description":
        return f"{f['custom']} ({f['location']})\n{f['description']}"
    return "\n\n".join(f"{k.upper()}: {f[k]}" for k in ("question", "helpful", "harmless", "honest"))


def export(candidates: list[dict], folder: Path) -> list[Path]:
    """Write review.csv, labelstudio_tasks.json and labelstudio_config.xml into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "review.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for c in candidates:
            writer.writerow({"id": c["id"], "kind": c["kind"], "context": c["context"], **c["fields"]})
    data = [
        {"id": c["id"], "kind": c["kind"], "context": c["context"], "item": render(c), **c["fields"]}
        for c in candidates
    ]
    kinds = sorted({c["kind"] for c in candidates}) or list(EDITABLE)
    fields = tuple(dict.fromkeys(f for k in kinds for f in EDITABLE[k]))
    areas = "\n".join(
        f'  <TextArea name="edit_{f}" toName="item" maxSubmissions="1" editable="true" '
        f"placeholder={quoteattr(f'edited {f} (only with edit; leave empty to keep)')}/>"
        for f in fields
    )
    config = (
        "<View>\n"
        '  <Header value="$kind: $id"/>\n'
        '  <Text name="context" value="$context"/>\n'
        '  <Text name="item" value="$item"/>\n'
        '  <Choices name="decision" toName="item" choice="single" required="true">\n'
        + "".join(f'    <Choice value="{a}"/>\n' for a in ACTIONS)
        + "  </Choices>\n"
        + areas
        + "\n</View>\n"
    )
    return [folder / "review.csv", *write_labelstudio(folder, data, config)]


@dataclass(frozen=True)
class Decision:
    id: str
    action: str
    fields: dict[str, str]
    note: str = ""


def read_decisions(path: Path, candidates: dict[str, dict]) -> dict[str, Decision]:
    """Decisions by item id from review.csv (filled in) or a Label Studio JSON export."""
    if path.suffix.lower() not in (".csv", ".json"):
        raise DecisionError([f"{path.name}: expected review.csv or a Label Studio export (.json)"])
    try:  # the project's one reader: BOM-tolerant, strict UTF-8, duplicate keys and header names refused
        if path.suffix.lower() == ".csv":
            records = _csv_records(path.name, textio.read_csv(path, allow_trailing_unnamed=True))
        else:
            records = _labelstudio_records(path.name, textio.load_json(path))
    except textio.TextInputError as err:
        raise DecisionError([str(p) for p in err.problems]) from None
    problems: list[str] = []
    decisions: dict[str, Decision] = {}
    first: dict[str, str] = {}
    for where, item_id, action, edits, note, record_problems in records:
        loc = f"{path.name}: {where}" + (f" (id {item_id!r})" if item_id else "")
        problems += [f"{loc}: {p}" for p in record_problems]
        if record_problems or action is None:
            continue
        if item_id not in candidates:
            problems.append(f"{loc}: field 'id': no such item among the candidates")
            continue
        if item_id in first:
            problems.append(f"{loc}: field 'id': a second decision for this item (first: {first[item_id]})")
            continue
        first[item_id] = where
        if action not in ACTIONS:
            problems.append(f"{loc}: field 'decision': {action!r} is not one of {', '.join(ACTIONS)}")
            continue
        candidate = candidates[item_id]
        original = candidate["fields"]
        allowed = EDITABLE[candidate["kind"]]
        stray = sorted(f for f, v in edits.items() if f not in allowed and v.strip())
        if stray:
            problems.append(f"{loc}: field {stray[0]!r}: not a field of a {candidate['kind']} item")
            continue
        merged = {**original, **{f: v for f, v in edits.items() if f in allowed}}
        changed = [f for f in allowed if " ".join(merged[f].split()) != " ".join(original[f].split())]
        if action == "accept" and changed:
            problems.append(f"{loc}: field {changed[0]!r}: changed, but the decision is 'accept' (use 'edit')")
        elif action == "edit" and not changed:
            problems.append(f"{loc}: field 'decision': 'edit' but no field was changed")
        elif action == "edit":
            problems += [
                f"{loc}: field {p.split(':')[0]!r}: {p.split(':', 1)[1].strip()}"
                for p in check_fields(candidate["kind"], merged)
            ]
        decisions[item_id] = Decision(item_id, action, {f: merged[f].strip() for f in allowed}, note)
    if problems:
        raise DecisionError(problems)
    return decisions


def _csv_records(name: str, table: textio.CsvTable):
    for record, row in csv_rows(name, table, ("id", "decision"), DecisionError):
        item_id = (row.get("id") or "").strip()
        action = (row.get("decision") or "").strip().lower() or None
        problems = [] if item_id or action is None else ["field 'id': empty"]
        problems += [
            f"field {k!r}: {textio.control_characters(v)}"
            for k, v in row.items()
            if k in ALL_FIELDS and textio.control_characters(v)
        ]
        edits = {k: v for k, v in row.items() if k in ALL_FIELDS and v is not None}
        yield f"line {record.line}", item_id, action, edits, (row.get("note") or "").strip(), problems


def _labelstudio_records(name: str, tasks: object):
    for n, task in enumerate(labelstudio_tasks(name, tasks, DecisionError)):
        where = f"task {n}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            yield where, "", None, {}, "", ["field 'data.id': missing or not a string"]
            continue
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not annotations:
            yield where, data["id"], None, {}, "", []  # not reviewed
            continue
        result = annotations[-1].get("result")
        if not isinstance(result, list):
            yield where, data["id"], None, {}, "", ["field 'annotations[-1].result': not a list"]
            continue
        action, edits, problems = None, {}, []
        for k, r in enumerate(result):
            value = r.get("value") if isinstance(r, dict) else None
            source = r.get("from_name") if isinstance(r, dict) else None
            if not isinstance(value, dict):
                problems.append(f"field 'result[{k}].value': missing")
            elif source == "decision":
                choices = value.get("choices")
                if not (isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], str)):
                    problems.append(f"field 'result[{k}].value.choices': expected exactly one choice")
                else:
                    action = choices[0].strip().lower()
            elif isinstance(source, str) and source.startswith("edit_"):
                lines = value.get("text")
                if not (isinstance(lines, list) and all(isinstance(t, str) for t in lines)):
                    problems.append(f"field 'result[{k}].value.text': expected a list of strings")
                elif "\n".join(lines).strip():
                    edits[source[len("edit_") :]] = "\n".join(lines).strip()
        if action is None and not problems:
            problems.append("field 'decision': the annotation has no decision choice")
        yield where, data["id"], action, edits, "", problems


def apply(candidates: list[dict], decisions: dict[str, Decision]) -> tuple[list[dict], dict[str, int]]:
    """Kept items (accepted or edited, marked ``checked``) and the review counts for the card."""
    kept = []
    counts = {"candidates": len(candidates), "reviewed": 0, "accepted": 0, "edited": 0, "rejected": 0, "unreviewed": 0}
    for c in candidates:
        decision = decisions.get(c["id"])
        if decision is None:
            counts["unreviewed"] += 1
            continue
        counts["reviewed"] += 1
        counts[{"accept": "accepted", "edit": "edited", "reject": "rejected"}[decision.action]] += 1
        if decision.action != "reject":
            kept.append({**c, "fields": decision.fields, "checked": True, "review": decision.action})
    return kept, counts
