"""Human verification round trip: export items for review, import the reviewers' decisions.

Export: ``review.csv`` (one row per item, a ``decision`` column to fill with accept / reject / edit;
for edit, change the item's columns in place) and Label Studio files: ``labelstudio_tasks.json``
(its documented import format, a list of ``{"data": {...}}``) with ``labelstudio_config.xml`` (the
labeling interface: a ``decision`` choice and one ``edit_<field>`` text area per field). Import:
that CSV, or Label Studio's JSON export (tasks with ``annotations[].result``). Only accepted and
edited items are kept, marked ``checked``; a malformed decision names the file, record and field.

The reading and writing of those files (:func:`csv_records`, :func:`labelstudio_tasks`,
:func:`write_labelstudio`) is shared with the judge calibration (``culturesafe judge calibrate``): one
importer for people's input, whatever they are asked.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .items import LETTERS, check_mcq, check_query, check_references

ACTIONS = ("accept", "reject", "edit")
EDITABLE = {
    "knowledge": ("question", *(f"option_{letter}" for letter in LETTERS), "answer"),
    "safety": ("scene", "requirement"),
    "culturax": ("question", "helpful", "harmless", "honest"),
}
ALL_FIELDS = tuple(dict.fromkeys(f for fields in EDITABLE.values() for f in fields))
CSV_COLUMNS = ("id", "kind", "context", *ALL_FIELDS, "decision", "note")


class RecordsError(ValueError):
    """A file of people's input that cannot be used; lists every problem (file, record, field)."""

    what = "the file"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in {self.what}:\n{listed}{more}")


class DecisionError(RecordsError):
    """A decisions file that cannot be applied."""

    what = "the review decisions"


# --- the shared reading and writing of people's input ---------------------------------------------------
def read_text(path: Path, error: type[RecordsError] = DecisionError) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise error([f"{path.name}: cannot read: {err}"]) from None


def csv_records(
    name: str, text: str, required: tuple[str, ...], error: type[RecordsError] = DecisionError
) -> Iterator[tuple[str, dict[str, str]]]:
    """(``line N``, row) of a CSV; a missing or repeated header name is an error naming it."""
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    repeated = [c for c in dict.fromkeys(header) if header.count(c) > 1]
    if repeated:
        raise error([f"{name}: header: field {repeated[0]!r}: appears more than once"])
    missing = [c for c in required if c not in header]
    if missing:
        raise error([f"{name}: header: field {missing[0]!r}: missing column"])
    for row in reader:
        yield f"line {reader.line_num}", row


def labelstudio_tasks(
    name: str, text: str, error: type[RecordsError] = DecisionError
) -> Iterator[tuple[str, dict | None, list[dict]]]:
    """(``task N``, its ``data``, its annotations not cancelled) from a Label Studio JSON export."""
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as err:
        raise error([f"{name}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"]) from None
    if not isinstance(tasks, list):
        raise error([f"{name}: top level: expected a list of tasks (Label Studio JSON export)"])
    for n, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        annotations = task.get("annotations") if isinstance(task, dict) else None
        kept = [a for a in annotations or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        yield f"task {n}", data if isinstance(data, dict) else None, kept


def write_labelstudio(folder: Path, data: list[dict], config: str) -> list[Path]:
    """``labelstudio_tasks.json`` (Label Studio's import format) and ``labelstudio_config.xml``."""
    tasks = [{"data": d} for d in data]
    (folder / "labelstudio_tasks.json").write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "labelstudio_config.xml").write_text(config, encoding="utf-8")
    return [folder / "labelstudio_tasks.json", folder / "labelstudio_config.xml"]


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
    text = read_text(path)
    if path.suffix.lower() == ".csv":
        records = _csv_records(path.name, text)
    elif path.suffix.lower() == ".json":
        records = _labelstudio_records(path.name, text)
    else:
        raise DecisionError([f"{path.name}: expected review.csv or a Label Studio export (.json)"])
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


def _csv_records(name: str, text: str):
    for where, row in csv_records(name, text, ("id", "decision")):
        item_id = (row.get("id") or "").strip()
        action = (row.get("decision") or "").strip().lower() or None
        problems = [] if item_id or action is None else ["field 'id': empty"]
        edits = {k: v for k, v in row.items() if k in ALL_FIELDS and v is not None}
        yield where, item_id, action, edits, (row.get("note") or "").strip(), problems


def _labelstudio_records(name: str, text: str):
    for where, data, done in labelstudio_tasks(name, text):
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            yield where, "", None, {}, "", ["field 'data.id': missing or not a string"]
            continue
        if not done:
            yield where, data["id"], None, {}, "", []  # not reviewed
            continue
        result = done[-1].get("result")
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
