"""AdaCultureSafe's first step, "authoritative cultural knowledge descriptions curation", as a command.

Sources (local files, URLs, search queries; :mod:`.source_texts`) -> main text in chunks -> an LLM decomposes each
chunk into fine-grained descriptions, one custom each, with an evidence span copied from the text -> a description
whose evidence does not occur in its source text (whitespace and case aside) is a counted rejection -> SimHash
near-duplicates across sources removed (listed with their twins) -> the review round trip of ``generate
adaculturesafe`` (:mod:`.review`) -> :func:`publish` writes ``descriptions.jsonl``, which ``generate adaculturesafe
--descriptions`` reads as it is; each row's ``source`` is the URL or file, and the provenance columns travel beside.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from culturesafe_ext.data.textio import norm
from culturesafe_ext.llm import LLMClient

from . import engine, review, workdir
from .dedup import remove_near_duplicates
from .prompts import load_prompt
from .source_texts import SourceRejection, SourceText

DATASET = "descriptions"
KIND = "description"
FIELDS = ("custom", "location", "description", "evidence")
EVIDENCE_MISSING, FIELD_MISSING, NEAR_DUPLICATE = "evidence not in source", "missing field", "near-duplicate"
OUTPUT = "descriptions.jsonl"


def chunks(text: str, limit: int) -> list[str]:
    """The text cut at paragraph ends into pieces of at most ``limit`` characters (a longer paragraph alone)."""
    out, current = [], ""
    for para in (p.strip() for p in re.split(r"\n\s*\n|\n", text)):
        if not para:
            continue
        if current and len(current) + len(para) + 2 > limit:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    return [*out, current] if current else out


def _parse(obj: dict) -> tuple[list[dict], list[str]]:
    """One item holding the reply's entries: a reply is retried only when it has no ``descriptions`` list; each
    entry is checked afterwards against its source (a bad entry is a counted rejection, not a retry)."""
    entries = obj.get("descriptions")
    if not isinstance(entries, list):
        return [], ["field 'descriptions': missing or not a list"]
    return [{"entries": entries}], []


def evidence_in(evidence: str, text: str) -> bool:
    """Does the evidence span occur in the text (whitespace and case normalised)?"""
    span = norm(evidence, casefold=True)
    return bool(span) and span in norm(text, casefold=True)


def _check(entry: object) -> tuple[dict | None, str]:
    if not isinstance(entry, dict):
        return None, "entry is not an object"
    missing = [f for f in FIELDS if not isinstance(entry.get(f), str) or not entry[f].strip()]
    if missing:
        return None, f"field {missing[0]!r}: missing or empty"
    return {f: " ".join(entry[f].split()) for f in FIELDS}, ""


def generate(
    texts: list[SourceText],
    source_rejections: list[SourceRejection],
    work: Path,
    writer: LLMClient,
    *,
    country: str,
    chunk_chars: int = 6000,
    max_attempts: int = 3,
    max_tokens: int = 2048,
    threshold: int = 10,
    version: str = "v1",
    search: dict | None = None,
) -> dict:
    """Decompose, check evidence, deduplicate; write candidates, review files and the report into ``work``."""
    prompt = load_prompt("descriptions", version)
    tasks, chunk_of = [], {}
    for n, src in enumerate(texts):
        for c, piece in enumerate(chunks(src.text, chunk_chars)):
            key = f"s{n}-c{c}"
            chunk_of[key] = (src, piece)
            tasks.append(
                engine.Task(
                    key=key,
                    prompt=prompt,
                    values={"country": country, "source": src.title or src.source_id, "text": piece},
                    n_items=1,
                    parse=_parse,
                    identity=lambda item: "reply",
                )
            )
    outcomes, stats = engine.run(writer, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
    per_source = {
        s.source_id: {"kind": s.kind, "title": s.title, "chunks": 0, "proposed": 0, "candidates": 0} for s in texts
    }
    rejections: list[dict] = [{**asdict(r), "stage": "source"} for r in source_rejections]
    candidates = []
    for outcome in outcomes:
        src, piece = chunk_of[outcome.key]
        counts = per_source[src.source_id]
        counts["chunks"] += 1
        if not outcome.complete:
            rejections.append(
                {
                    "source_id": src.source_id,
                    "kind": src.kind,
                    "reason": "no usable reply",
                    "stage": "llm",
                    "detail": f"{outcome.key}: {len(outcome.attempts)} attempt(s)",
                }  # fmt: skip
            )
            continue
        for i, entry in enumerate(outcome.items[0]["entries"]):
            counts["proposed"] += 1
            item, problem = _check(entry)
            if item is not None and not evidence_in(item["evidence"], piece):
                problem = EVIDENCE_MISSING
            if item is None or problem:
                reason = EVIDENCE_MISSING if problem == EVIDENCE_MISSING else FIELD_MISSING
                detail = problem if reason == FIELD_MISSING else f"evidence {item['evidence'][:120]!r}"
                rejections.append(
                    {"source_id": src.source_id, "kind": src.kind, "reason": reason, "stage": "check", "detail": detail}
                )
                continue
            candidates.append(_candidate(src, outcome.key, i, item, country))
    kept, removed, _ = remove_near_duplicates(candidates, lambda c: c["fields"]["description"], threshold)
    by_id = {c["id"]: c for c in candidates}
    for r in removed:
        src = by_id[r["id"]]["base"]
        rejections.append(
            {
                "source_id": src["source"],
                "kind": src["source_kind"],
                "reason": NEAR_DUPLICATE,
                "stage": "dedup",
                "detail": f"twin {r['twin_id']} (Hamming {r['distance']})",
            }  # fmt: skip
        )
    for c in kept:
        per_source[c["base"]["source"]]["candidates"] += 1
    reasons = Counter(r["reason"] for r in rejections)
    report = {
        "dataset": DATASET,
        "generator": engine.generator_settings(writer),
        "prompts": [prompt.id],
        "settings": {
            "country": country,
            "chunk_chars": chunk_chars,
            "max_attempts": max_attempts,
            "max_tokens": max_tokens,
            "threshold": threshold,
        },  # fmt: skip
        "search": search or {},
        "sources": {"used": len(texts), "rejected": len(source_rejections)},
        "per_source": per_source,
        "rejections_by_reason": dict(sorted(reasons.items())),
        "rejections": rejections,
        "stats": asdict(stats),
        # every chunk without a usable reply, with each attempt's raw reply and problems (cut, no JSON, failed)
        "incomplete_tasks": [
            {"source_id": chunk_of[o.key][0].source_id, **o.report()} for o in outcomes if not o.complete
        ],
        "removed_near_duplicates": removed,
        "candidates": {KIND: len(kept)},
    }
    workdir.write(work, kept, report)
    review.export(kept, work / workdir.REVIEW)
    return report


def _candidate(src: SourceText, chunk_key: str, i: int, item: dict, country: str) -> dict:
    base = {
        "country": country,
        "source": src.source_id,
        "source_kind": src.kind,
        "source_title": src.title,
        "source_backend": src.backend,
        "source_query": src.query,
        "retrieved_at": src.retrieved_at,
        "content_hash": src.content_hash,
        "evidence": item["evidence"],
    }
    return {
        "id": f"{src.content_hash[:12]}-{chunk_key.split('-')[1]}-{i}",
        "kind": KIND,
        "context": f"Source: {src.title} ({src.source_id})\nEvidence: {item['evidence']}",
        "fields": {f: item[f] for f in ("custom", "location", "description")},
        "base": base,
    }


def rows_of(kept: list[dict]) -> list[dict]:
    """``generate adaculturesafe``'s input rows (id, country, location, source, description) plus provenance."""
    return [
        {
            "id": c["id"],
            "country": c["base"]["country"],
            "location": c["fields"]["location"],
            "source": c["base"]["source"],
            "description": c["fields"]["description"],
            "custom": c["fields"]["custom"],
            **{k: v for k, v in c["base"].items() if k not in ("country", "source")},
        }  # fmt: skip
        for c in kept
    ]


def publish(out: Path, decisions: dict, report: dict, candidates: list[dict]) -> dict:
    """Write the verified descriptions to ``out/descriptions.jsonl`` and the build report beside it."""
    kept, counts = review.apply(candidates, decisions)
    rows = rows_of(kept)
    out.mkdir(parents=True, exist_ok=True)
    with (out / OUTPUT).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    build = {
        "generation": report,
        "review": counts,
        "rows": {KIND: len(rows)},
        "per_source": dict(sorted(Counter(r["source"] for r in rows).items())),
    }
    (out / "build_report.json").write_text(json.dumps(build, ensure_ascii=False, indent=2), encoding="utf-8")
    return build
