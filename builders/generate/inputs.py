"""The generation inputs: cultural descriptions and CulturaX questions, from JSONL or CSV, validated.

Every problem names the file, the line and the field (``descriptions.csv: line 7: field 'country':
empty``) and all problems of a file are reported at once, so a user fixes the file in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from culturesafe_ext.data import textio
from culturesafe_ext.data.textio import InputProblem

DESCRIPTION_FIELDS = ("id", "country", "location", "source", "description")
DESCRIPTION_OPTIONAL = ("country_native", "iso_alpha2", "iso_alpha3", "iso_numeric")
QUESTION_FIELDS = ("id", "question")
QUESTION_OPTIONAL = ("subdomain_id", "subdomain", "domain", "topic")


class InputError(textio.TextInputError):
    """An input file with invalid records; lists every problem (file, line, field)."""

    heading = "problem(s) in the input"


def _problem(file: str, line: int, field: str, message: str) -> InputProblem:
    """A problem at a line of an input file (line 0: the file as a whole)."""
    return InputProblem(file, f"line {line}", field, message)


@dataclass(frozen=True)
class Description:
    """One cultural description, the unit the AdaCultureSafe items are generated from."""

    id: str
    country: str
    location: str
    source: str
    description: str
    country_native: str
    iso_alpha2: str
    iso_alpha3: str
    iso_numeric: str
    line: int


@dataclass(frozen=True)
class Question:
    """One CulturaX question to write the three reference answers for."""

    id: str
    question: str
    subdomain_id: str
    subdomain: str
    domain: str
    topic: str
    line: int


def read_records(path: Path) -> list[tuple[int, object]]:
    """(line number, record) for each record of a ``.jsonl`` or ``.csv`` file (CSV rows as dicts).

    Read through the project's one text reader (BOM-tolerant, strict UTF-8, duplicate JSON keys and
    duplicate or missing CSV header names are errors naming file, line and field).
    """
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise InputError([_problem(name, 0, "-", "expected a .jsonl or .csv file")])
    try:
        if suffix == ".jsonl" or suffix == ".ndjson":
            return textio.read_jsonl(path)
        table = textio.read_csv(path, allow_trailing_unnamed=True)
    except textio.TextInputError as err:
        raise InputError([_from_textio(p) for p in err.problems]) from None
    if table.problems:
        raise InputError([_from_textio(p) for p in table.problems])
    rows = []
    for record in table.records:
        if not any(cell.strip() for cell in record.cells):
            continue
        if len(record.cells) > len(table.header):
            extra = len(table.header) + 1
            raise InputError([_problem(name, record.line, f"column {extra}", "more fields than the header")])
        row = {h: c for h, c in zip(table.header, record.cells, strict=False) if h}
        rows.append((record.line, row))
    return rows


def _from_textio(p: InputProblem) -> InputProblem:
    numbers = (
        ["1"] if p.record == "header" else re.findall(r"line (\d+)", p.record) or re.findall(r"line (\d+)", p.message)
    )
    field = "-" if p.field in ("json", "encoding") else p.field  # file-level, as before
    return _problem(p.file, int(numbers[0]) if numbers else 0, field, p.message)


def _fields(
    name: str, line: int, record: object, required: tuple[str, ...], optional: tuple[str, ...], problems: list
) -> dict[str, str]:
    if not isinstance(record, dict):
        problems.append(_problem(name, line, "-", "expected an object"))
        return {}
    out: dict[str, str] = {}
    for key in (*required, *optional):
        value = record.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if key in required:
                problems.append(_problem(name, line, key, "missing" if key not in record else "empty"))
            out[key] = ""
        elif isinstance(value, str) and textio.control_characters(value):
            problems.append(_problem(name, line, key, str(textio.control_characters(value))))
            out[key] = ""
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            out[key] = str(value).strip()
        else:
            problems.append(_problem(name, line, key, f"expected a string, got {type(value).__name__}"))
    return out


def _unique(name: str, rows: list[tuple[int, dict]], problems: list[InputProblem]) -> None:
    first: dict[str, int] = {}
    for line, row in rows:
        if row.get("id") and row["id"] in first:
            problems.append(
                _problem(name, line, "id", f"duplicate id {row['id']!r} (first on line {first[row['id']]})")
            )
        first.setdefault(row.get("id", ""), line)


def _country_codes(row: dict[str, str]) -> tuple[str, str, str, str] | str:
    """(native, alpha2, alpha3, numeric) from the row, filled from ISO 3166 (pycountry); or an error."""
    given = (row["country_native"], row["iso_alpha2"], row["iso_alpha3"], row["iso_numeric"])
    if row["iso_alpha3"]:
        return given
    import pycountry

    try:
        found = pycountry.countries.lookup(row["country"])
    except LookupError:
        return f"no ISO 3166 country named {row['country']!r}: add an iso_alpha3 column (any 3-letter code)"
    return (row["country_native"] or found.name, row["iso_alpha2"] or found.alpha_2, found.alpha_3, found.numeric)


def read_descriptions(path: Path) -> list[Description]:
    """Validated descriptions; raises :class:`InputError` listing every problem."""
    name = path.name
    problems: list[InputProblem] = []
    rows = [
        (line, _fields(name, line, r, DESCRIPTION_FIELDS, DESCRIPTION_OPTIONAL, problems))
        for line, r in read_records(path)
    ]
    _unique(name, rows, problems)
    out: list[Description] = []
    for line, row in rows:
        if not row or not row.get("country"):
            continue
        if "/" in row["id"]:
            problems.append(_problem(name, line, "id", "must not contain '/' (it separates row id parts)"))
        codes = _country_codes(row)
        if isinstance(codes, str):
            problems.append(_problem(name, line, "country", codes))
            continue
        native, alpha2, alpha3, numeric = codes
        fields = {k: row[k] for k in DESCRIPTION_FIELDS}
        out.append(
            Description(
                **fields, country_native=native, iso_alpha2=alpha2, iso_alpha3=alpha3, iso_numeric=numeric, line=line
            )
        )
    if not rows and not problems:
        problems.append(_problem(name, 0, "-", "no records"))
    if problems:
        raise InputError(problems)
    return out


def read_questions(path: Path) -> list[Question]:
    """Validated CulturaX questions; raises :class:`InputError` listing every problem."""
    name = path.name
    problems: list[InputProblem] = []
    rows = [
        (line, _fields(name, line, r, QUESTION_FIELDS, QUESTION_OPTIONAL, problems)) for line, r in read_records(path)
    ]
    _unique(name, rows, problems)
    for line, row in rows:
        if row.get("subdomain_id") and not row["subdomain_id"].isdigit():
            problems.append(_problem(name, line, "subdomain_id", f"{row['subdomain_id']!r} is not a whole number"))
    if not rows and not problems:
        problems.append(_problem(name, 0, "-", "no records"))
    if problems:
        raise InputError(problems)
    return [Question(**{k: row[k] for k in (*QUESTION_FIELDS, *QUESTION_OPTIONAL)}, line=line) for line, row in rows]
