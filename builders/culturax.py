"""CulturaX release (one CSV) -> validated, deduplicated, leakage-free split -> Hub layout.

Reads ``CulturaX.csv`` exactly as the authors published it (Windows-1252, a trailing empty column).
Exact repeats of a question are merged (the first row wins; every merged row is listed in the
report). Fingerprints are recomputed with the project's one SimHash search (the upstream
``simhash_id`` column was mangled into floats by a spreadsheet); near-duplicate clusters at a
Hamming radius (the paper's tau = 10 by default) are kept inside one split, so cross-split leakage is
zero by construction, and the report proves it by checking every pair. Rows whose references do not
address their question are flagged, not deleted. Every problem names file, row and column.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from culturesafe_ext import near_duplicates as nd
from culturesafe_ext.data import textio
from culturesafe_ext.data.culturax_schema import ALL, DOMAINS, FEATURES, SPLITS, SUBDOMAINS, config_name

from .adaculturesafe import Problem
from .culturax_audit import SUSPECT_THRESHOLD, audit_references
from .culturax_report import build_report, card
from .culturax_source import SourceRow
from .culturax_split import DEFAULT_SEED, split_units
from .hub_layout import ConfigTable, write_hub_dataset

UPSTREAM = "gskgautam/AlignCultura@38930cf"
DEFAULT_THRESHOLD = 10  # the paper's tau: Hamming distance between 64-bit SimHash fingerprints
REQUIRED = ("Question", "class", "domain", "helpful_response", "harmless_response", "honest_response")
OPTIONAL = ("simhash_id", "pass_hhh")


class CulturaXError(textio.TextInputError):
    """The CSV cannot be built: every problem is listed with its row and column."""

    heading = "problem(s) in the CulturaX CSV"


@dataclass
class Build:
    """What the builder produced: the written rows and everything the report and card state."""

    rows: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)


def read_csv(path: Path, encoding: str = "auto") -> tuple[list[SourceRow], str]:
    """Parse and validate the CSV; return its rows and the encoding used, or raise :class:`CulturaXError`.

    Read through the project's one text reader (:func:`culturesafe_ext.data.textio.read_csv`):
    ``encoding="auto"`` is UTF-8, or Windows-1252 (the release's) only for a file none of whose
    non-ASCII fields is UTF-8; a file mixing both fails at each foreign field's line and column
    instead of being decoded wholesale either way. A duplicated or missing header name, a bad byte,
    a control character, a missing column or an empty field fails the build naming row and column.
    """
    name = path.name
    try:
        table = textio.read_csv(path, encoding, allow_trailing_unnamed=True)
    except textio.TextInputError as err:
        raise CulturaXError([Problem.of(p) for p in err.problems]) from None
    problems: list[Problem] = [Problem.of(p) for p in table.problems]
    header = table.header
    missing = [c for c in REQUIRED if c not in header]
    for column in missing:
        problems.append(Problem(name, "header", column, f"missing column (the header has {header})"))
    unknown = [h for h in header if h and h not in REQUIRED + OPTIONAL]
    for column in unknown:
        problems.append(Problem(name, "header", column, "unexpected column"))
    if missing or unknown:
        raise CulturaXError(problems)
    index = {h: i for i, h in enumerate(header) if h}
    unnamed = [i for i, h in enumerate(header) if not h]
    rows: list[SourceRow] = []
    for record in table.records:
        number, cells_in = record.row, record.cells
        where = f"row {number}"
        if not any(cell.strip() for cell in cells_in):
            problems.append(Problem(name, where, "-", "empty row"))
            continue
        if len(cells_in) != len(header):
            problems.append(Problem(name, where, "-", f"{len(cells_in)} fields, the header has {len(header)}"))
            continue
        for i in unnamed:
            if cells_in[i].strip():
                message = f"value {cells_in[i]!r} under an unnamed column"
                problems.append(Problem(name, where, f"column {i + 1}", message))
        cells = {c: cells_in[index[c]].strip() for c in REQUIRED}
        bad = False
        for column in REQUIRED:
            control = textio.control_characters(cells[column])
            if control:
                problems.append(Problem(name, f"{where} (line {record.line})", column, control))
                bad = True
        for column in ("Question", "helpful_response", "harmless_response", "honest_response"):
            if not cells[column]:
                problems.append(Problem(name, where, column, "empty"))
                bad = True
        class_text = cells["class"]
        if not re.fullmatch(r"\d+", class_text):
            problems.append(Problem(name, where, "class", f"not a class id: {class_text!r}"))
            bad = True
        elif int(class_text) not in SUBDOMAINS:
            problems.append(
                Problem(name, where, "class", f"unknown class id {class_text} (known: {sorted(SUBDOMAINS)})")
            )
            bad = True
        if not bad:
            rows.append(
                SourceRow(
                    row=number,
                    question=_clean(cells["Question"]),
                    subdomain_id=int(class_text),
                    topic=cells["domain"],
                    helpful=_clean(cells["helpful_response"]),
                    harmless=_clean(cells["harmless_response"]),
                    honest=_clean(cells["honest_response"]),
                )
            )
    if problems:
        raise CulturaXError(problems)
    if not rows:
        raise CulturaXError([Problem(name, "-", "-", "no data rows")])
    return rows, table.encoding


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def merge_repeats(rows: list[SourceRow]) -> tuple[list[SourceRow], list[dict]]:
    """One row per distinct question (the first occurrence); the report lists every merged row.

    "The same question" is the project's one normalisation (:func:`culturesafe_ext.data.textio.norm`), so a
    repeat that differs only by a no-break space or a full-width letter is merged too.
    """
    first: dict[str, SourceRow] = {}
    merged: dict[str, list[SourceRow]] = defaultdict(list)
    for row in rows:
        key = textio.norm(row.question)
        if key in first:
            merged[key].append(row)
        else:
            first[key] = row
    report = []
    for key, repeats in merged.items():
        kept = first[key]
        report.append(
            {
                "question": kept.question,
                "kept_row": kept.row,
                "merged_rows": [r.row for r in repeats],
                "same_class": all(r.subdomain_id == kept.subdomain_id for r in repeats),
                "same_references": all(
                    (r.helpful, r.harmless, r.honest) == (kept.helpful, kept.harmless, kept.honest) for r in repeats
                ),
                "merged_references": [
                    {"row": r.row, "helpful": r.helpful, "harmless": r.harmless, "honest": r.honest} for r in repeats
                ],
            }
        )
    return list(first.values()), report


def build(
    source: Path,
    out: Path,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    seed: int = DEFAULT_SEED,
    suspect_threshold: float = SUSPECT_THRESHOLD,
    encoding: str = "auto",
    source_commit: str = UPSTREAM,
) -> Build:
    """Read ``source`` (CulturaX.csv) and write the Hub layout, report and card into ``out``."""
    read, used_encoding = read_csv(source, encoding)
    rows, merged = merge_repeats(read)
    fps = [nd.fingerprint(r.question) for r in rows]
    pairs = nd.near_duplicate_pairs(np.array(fps, dtype=np.uint64), threshold)
    groups = nd.clusters(len(rows), pairs)
    in_group = {i for g in groups for i in g}
    units = groups + [[i] for i in range(len(rows)) if i not in in_group]
    subs = [SUBDOMAINS[r.subdomain_id] for r in rows]
    split = split_units(units, [s.id for s in subs], [s.domain for s in subs], seed)
    reasons = audit_references(rows, suspect_threshold)
    ids = [f"r{r.row:04d}" for r in rows]
    cluster_of = {i: ids[g[0]] for g in groups for i in g}
    out_rows = [
        {
            "id": ids[i],
            "question": r.question,
            "helpful": r.helpful,
            "harmless": r.harmless,
            "honest": r.honest,
            "subdomain_id": r.subdomain_id,
            "subdomain": subs[i].name,
            "domain": subs[i].domain,
            "topic": r.topic,
            "simhash": nd.to_hex(fps[i]),
            "cluster_id": cluster_of.get(i, ids[i]),
            "reference_suspect": bool(reasons[i]),
            "reference_suspect_reason": reasons[i],
            "split": split[i],
        }
        for i, r in enumerate(rows)
    ]
    report = build_report(
        read, rows, out_rows, merged, fps, pairs, groups, threshold, seed, used_encoding, source_commit
    )
    report["reference_audit"]["threshold"] = suspect_threshold
    tables = []
    domains = [d for d in DOMAINS if any(r["domain"] == d for r in out_rows)]
    for dom in [ALL, *domains]:
        for s in SPLITS:
            subset = [r for r in out_rows if r["split"] == s and dom in (ALL, r["domain"])]
            tables.append(ConfigTable(config_name(dom), s, FEATURES, subset))
    write_hub_dataset(out, tables, card(report))
    (out / "build_report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return Build(rows=out_rows, report=report)
