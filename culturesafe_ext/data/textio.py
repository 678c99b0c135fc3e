"""The one reader of text inputs (release JSON, JSONL, CSV, review files) and the one text normalisation.

Why one place: every builder and the generator must agree on what a file says and on when two texts
are "the same". Every file is read as bytes and decoded strictly: a UTF-8 byte-order mark is dropped,
an undecodable byte is an error naming the line and column, never a guess for the whole file. JSON
is parsed strictly: a duplicate key or nesting too deep to read is an error naming the file and key,
not a silent merge or a traceback. A CSV header with a duplicated or missing name is an error.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

UTF8 = "utf-8"
CP1252 = "cp1252"
AUTO = "auto"
_SHOWN = {UTF8: "UTF-8", CP1252: "Windows-1252"}
MAX_JSON_DEPTH = 200  # deeper than any real input; far below Python's recursion limit

_SPACE = re.compile(r"\s+")
_EDGE = re.compile(r"^[\s\"'“”‘’.,;:…]+|[\s\"'“”‘’.,;:…]+$")
# C0 controls except tab/newline/carriage return, DEL, and the C1 block: never meant in a text field.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def norm(text: str, casefold: bool = False) -> str:
    """The project's one notion of "the same text", for comparisons only (never for storage).

    Unicode compatibility forms folded (NFKC: a no-break space is a space, a full-width letter a
    letter), invisible format characters (zero-width space, soft hyphen, BOM) removed, runs of
    whitespace collapsed, and quotes and end punctuation trimmed. Case is kept unless ``casefold``:
    the release has options that differ only in case ("CHEN Emily" / "Chen Emily", "Xiaoping" /
    "XIAOPING"), so options compare with case; evidence passages and question identity fold it.
    """
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # no ASCII character is a format character: a page of ASCII skips the per-character pass
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = _EDGE.sub("", _SPACE.sub(" ", text).strip())
    return text.casefold() if casefold else text


def control_characters(text: str) -> str | None:
    """A description of the first control character (NUL, escape, ...) in a text field, else ``None``."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} at character {found.start() + 1}"


@dataclass(frozen=True)
class InputProblem:
    """One problem of an input, located by file, record (line or row) and field.

    The one problem record of the project: the readers here, the release builders and the generator's
    inputs all report through it (a builder's rejects file is its fields as JSON).
    """

    file: str
    record: str
    field: str
    message: str

    def where(self) -> str:
        """The record as the message shows it (``line 7``, ``row 3``); a subclass may quote it."""
        return self.record

    def __str__(self) -> str:
        return f"{self.file}: {self.where()}: field {self.field!r}: {self.message}"


class TextInputError(ValueError):
    """An input with problems; lists every problem (file, record, field), the first 50 in the message.

    Why one class: every reader and builder lists its problems the same way; a subclass only names
    what was read (``heading``) and may add advice after the list (``advice``).
    """

    heading = "problem(s) reading the input"
    advice = ""

    def __init__(self, problems: list[InputProblem] | list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} {self.heading}:\n{listed}{more}{self.advice}")


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, column in bytes) of a byte offset."""
    line = raw.count(b"\n", 0, offset) + 1
    return line, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def decode(raw: bytes, name: str, encoding: str = UTF8) -> str:
    """Strictly decode a whole file (UTF-8 byte-order mark dropped); an error names line and column."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line, column = _position(raw, err.start)
        bad = raw[err.start : err.end]
        message = f"not {_SHOWN.get(encoding, encoding)}: byte(s) {bad!r} at line {line}, column {column}"
        raise TextInputError([InputProblem(name, "-", "encoding", message)]) from None


def read_text(path: Path, encoding: str = UTF8) -> str:
    """A text file's contents, BOM-tolerant and strictly decoded."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TextInputError([InputProblem(path.name, "-", "-", f"cannot read: {err.strerror}")]) from None
    return decode(raw, path.name, encoding)


# --------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------


class _Repeats(dict):
    """An object that held a key twice (the last value kept): marked so the reader can say where it was."""

    repeated: str


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """Every object of a document; one holding a key twice is marked (:class:`_Repeats`), never merged."""
    out: dict = {}
    for key, value in pairs:
        if key in out and not isinstance(out, _Repeats):
            out = _Repeats(out)
            out.repeated = key
        out[key] = value
    return out


def _first_repeat(value: object, path: tuple = ()) -> tuple[tuple, str] | None:
    """(path to the first object that holds a key twice, the key), depth first in document order."""
    if isinstance(value, _Repeats):
        return path, value.repeated
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _first_repeat(child, (*path, key))
        if found is not None:
            return found
    return None


def _dotted(path: tuple) -> str:
    """``("Cultural Knowledge", 0, "options")`` -> ``Cultural Knowledge[0].options``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_STRING_OR_BRACKET = re.compile(r'"(?:\\.|[^"\\])*"|[\[\]{}]')


def _too_deep(text: str, limit: int) -> int | None:
    """Line of the first bracket nested deeper than ``limit`` (brackets inside strings skipped), else ``None``.

    Why before parsing: Python's JSON parser recurses, so a file nested 200,000 levels deep would end
    in a RecursionError deep inside it; this scan is one regex pass and bounds what the parser sees.
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth -= 1
    return None


def loads_json(text: str, name: str, record: str = "-", max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse one JSON document strictly: duplicate keys, too deep nesting and bad syntax are errors."""
    deep = _too_deep(text, max_depth)
    if deep is not None:
        at = "" if record != "-" else f" (at line {deep})"
        raise TextInputError([InputProblem(name, record, "json", f"nested deeper than {max_depth} levels{at}")])
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        at = f"column {err.colno}" if record != "-" else f"line {err.lineno}, column {err.colno}"
        raise TextInputError([InputProblem(name, record, "json", f"invalid JSON at {at}: {err.msg}")]) from None
    except RecursionError:
        raise TextInputError([InputProblem(name, record, "json", "nested too deeply to read")]) from None
    repeat = _first_repeat(value)
    if repeat is None:
        return value
    path, key = repeat
    if record == "-" and path:  # name the record: a file keyed by record id, or a list of records
        record, path = (f"item {path[0] + 1}" if isinstance(path[0], int) else str(path[0])), path[1:]
    quoted = json.dumps(key, ensure_ascii=False)
    lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(re.escape(quoted) + r"\s*:", text)]
    where = f" (on lines {', '.join(map(str, lines))})" if len(set(lines)) > 1 else ""
    field = _dotted((*path, key))
    raise TextInputError(
        [InputProblem(name, record, field, f"duplicate key {key!r}{where}: one object holds it twice")]
    )


def load_json(path: Path) -> object:
    """A ``.json`` file, BOM-tolerant and strict (see :func:`loads_json`)."""
    return loads_json(read_text(path), path.name)


def read_jsonl(path: Path) -> list[tuple[int, object]]:
    """(line number, record) for every non-empty line of a ``.jsonl`` file; all bad lines reported at once."""
    text = read_text(path)
    records: list[tuple[int, object]] = []
    problems: list[InputProblem] = []
    # split on "\n" only: str.splitlines would also cut at U+2028, U+0085... which JSON strings may hold
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, loads_json(line, path.name, f"line {number}")))
        except TextInputError as err:
            problems += err.problems
    if problems:
        raise TextInputError(problems)
    return records


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record: its number (the header is row 1), the line it starts on, its cells by column."""

    row: int
    line: int
    cells: list[str]


@dataclass
class CsvTable:
    """A CSV file as read: header names, records, the encoding used and every decoding problem."""

    header: list[str]
    records: list[CsvRecord]
    encoding: str
    problems: list[InputProblem] = field(default_factory=list)

    def column(self, name: str) -> int:
        return self.header.index(name)


def _choose_encoding(fields: list[bytes], encoding: str) -> str:
    """UTF-8 when every field is UTF-8; Windows-1252 for a legacy file none of whose non-ASCII fields is
    UTF-8; a mixed file stays UTF-8, so each field that is not UTF-8 is an error at its line and column."""
    if encoding != AUTO:
        return encoding
    non_ascii = [f for f in fields if not f.isascii()]
    utf8 = 0
    for f in non_ascii:
        try:
            f.decode(UTF8)
            utf8 += 1
        except UnicodeDecodeError:
            pass
    return CP1252 if non_ascii and utf8 == 0 else UTF8


def read_csv(path: Path, encoding: str = UTF8, allow_trailing_unnamed: bool = False) -> CsvTable:
    """Read a CSV strictly: a bad byte, duplicate or missing header name is an error naming line and column.

    ``encoding``: ``utf-8``, ``cp1252`` or ``auto`` (UTF-8; Windows-1252 only for a file none of whose
    non-ASCII fields is UTF-8, like the CulturaX release; a mixed file fails at each foreign field).
    Records are split on the raw bytes (as latin-1, so the ASCII delimiters are untouched) and each
    field is decoded on its own, so a problem points at one field. ``allow_trailing_unnamed``: empty
    names at the end of the header (a spreadsheet's trailing commas) are accepted; their cells are
    returned for the caller to check.
    """
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TextInputError([InputProblem(name, "-", "-", f"cannot read: {err.strerror}")]) from None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
        if encoding == AUTO:
            encoding = UTF8
    reader = csv.reader(io.StringIO(raw.decode("latin-1"), newline=""))
    records: list[tuple[int, int, list[str]]] = []
    line = 1
    try:
        for cells in reader:
            records.append((len(records) + 1, line, cells))
            line = reader.line_num + 1
    except csv.Error as err:
        raise TextInputError([InputProblem(name, f"line {reader.line_num}", "-", f"not valid CSV: {err}")]) from None
    if not records:
        raise TextInputError([InputProblem(name, "header", "-", "the file is empty")])
    used = _choose_encoding([c.encode("latin-1") for _, _, cells in records for c in cells], encoding)
    problems: list[InputProblem] = []
    line_starts = [0] + [m.end() for m in re.finditer(b"\n", raw)]

    def decode_cell(text: str, row: int, first_line: int, column: str) -> str:
        data = text.encode("latin-1")
        try:
            return data.decode(used)
        except UnicodeDecodeError as err:
            bad = data[err.start : err.end]
            at = raw.find(data, line_starts[first_line - 1]) + err.start if data else -1
            where = f"line {_position(raw, at)[0]}, column {_position(raw, at)[1]}" if at >= 0 else f"line {first_line}"
            other = CP1252 if used == UTF8 else UTF8
            try:
                hint = (
                    f"; as {_SHOWN[other]} it would read {data[max(0, err.start - 12) : err.end + 12].decode(other)!r}"
                )
            except UnicodeDecodeError:
                hint = ""
            problems.append(InputProblem(name, f"row {row} ({where})", column, f"byte(s) {bad!r} are not {used}{hint}"))
            return data.decode(used, errors="replace")

    header = [decode_cell(h, 1, 1, f"column {i + 1}").strip().lstrip("\ufeff") for i, h in enumerate(records[0][2])]
    named = len(header)
    if allow_trailing_unnamed:
        while named and not header[named - 1]:
            named -= 1
    for i, h in enumerate(header[:named]):
        if not h:
            problems.append(InputProblem(name, "header", f"column {i + 1}", "missing column name"))
        elif h in header[:i]:
            problems.append(
                InputProblem(name, "header", h, f"duplicate column name (columns {header.index(h) + 1} and {i + 1})")
            )
    if problems:
        raise TextInputError(problems)
    rows = [
        CsvRecord(
            row,
            first_line,
            [
                decode_cell(c, row, first_line, header[i] if i < len(header) and header[i] else f"column {i + 1}")
                for i, c in enumerate(cells)
            ],
        )
        for row, first_line, cells in records[1:]
    ]
    return CsvTable(header=header, records=rows, encoding=used, problems=problems)
