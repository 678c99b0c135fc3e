"""The work folder between generation and publication: candidates, review files, generation report.

It sits beside the dataset folder (``<out>.work`` unless ``--work`` says otherwise), so the dataset
folder holds exactly what is pushed to the Hub, and unreviewed or rejected items never are.
"""

from __future__ import annotations

import json
from pathlib import Path

from culturesafe_ext.data import textio

CANDIDATES = "candidates.jsonl"
REPORT = "generation_report.json"
REVIEW = "review"


def default_work(out: Path) -> Path:
    return out.with_name(out.name + ".work")


def write(work: Path, candidates: list[dict], report: dict) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with (work / CANDIDATES).open("w", encoding="utf-8") as fh:
        for c in candidates:
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    (work / REPORT).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


def read(work: Path) -> tuple[list[dict], dict]:
    if not (work / REPORT).is_file():
        raise FileNotFoundError(f"{work / REPORT} not found: run `culturesafe generate adaculturesafe|culturax` first")
    report = textio.load_json(work / REPORT)
    candidates = [record for _, record in textio.read_jsonl(work / CANDIDATES)]
    return candidates, report  # type: ignore[return-value]
