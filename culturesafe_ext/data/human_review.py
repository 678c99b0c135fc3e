"""Files people fill in: what the generator's review round trip and the judge calibration share.

Both hand people a CSV and Label Studio files (its documented import format, a list of ``{"data": {...}}``,
with a labeling-interface XML) and read back the CSV or Label Studio's JSON export through the one text
reader (:mod:`culturesafe_ext.data.textio`). Here live the writer, the error that lists every bad record,
and the two readers' common first steps; what a row or an annotation means stays with each caller
(``builders/generate/review.py``, ``analysis/calibrate.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from culturesafe_ext.data import textio


class RecordsError(textio.TextInputError):
    """A file of people's input that cannot be used; lists every problem (file, record, field), as text."""

    what = "the file"

    def __init__(self, problems: list[str]) -> None:
        self.heading = f"problem(s) in {self.what}"
        super().__init__(problems)


def write_labelstudio(folder: Path, data: list[dict], config: str) -> list[Path]:
    """``labelstudio_tasks.json`` (Label Studio's import format) and ``labelstudio_config.xml``."""
    tasks = [{"data": d} for d in data]
    (folder / "labelstudio_tasks.json").write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "labelstudio_config.xml").write_text(config, encoding="utf-8")
    return [folder / "labelstudio_tasks.json", folder / "labelstudio_config.xml"]


def csv_rows(
    name: str, table: textio.CsvTable, required: tuple[str, ...], error: type[RecordsError]
) -> Iterator[tuple[textio.CsvRecord, dict[str, str]]]:
    """Each non-blank record of a filled-in CSV with its row by header name; the table's own problems or a
    missing required column raise ``error`` naming the file."""
    if table.problems:
        raise error([str(p) for p in table.problems])
    missing = [c for c in required if c not in table.header]
    if missing:
        raise error([f"{name}: header: field {missing[0]!r}: missing column"])
    for record in table.records:
        if any(cell.strip() for cell in record.cells):
            yield record, {h: c for h, c in zip(table.header, record.cells, strict=False) if h}


def labelstudio_tasks(name: str, tasks: object, error: type[RecordsError]) -> list:
    """The task list of a Label Studio JSON export, or ``error`` naming the file."""
    if not isinstance(tasks, list):
        raise error([f"{name}: top level: expected a list of tasks (Label Studio JSON export)"])
    return tasks
