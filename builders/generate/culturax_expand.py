"""AlignCultura's Stage I step 2: domain expansion of under-represented subdomains, then SimHash dedup (step 3).

For each UNESCO subdomain with fewer than ``target`` questions, a generator writes the missing number from a few of
that subdomain's own questions (seeded choice) through the one LLM client (cached: a resumed run sends nothing
twice). The new questions are deduplicated against every existing question and each other (SimHash, Hamming τ,
existing questions first so they always win); each removed one is listed with its twin. The report gives the
counts per subdomain before and after.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from culturesafe_ext.data.culturax_schema import SUBDOMAINS
from culturesafe_ext.data.textio import norm
from culturesafe_ext.llm import LLMClient
from culturesafe_ext.near_duplicates import deduplicate

from . import engine
from .inputs import read_records
from .prompts import load_prompt

QUESTIONS, REPORT = "questions.jsonl", "expand_report.json"


def questions_in_reply(obj: dict) -> tuple[list[dict], list[str]]:
    found = obj.get("questions")
    if not isinstance(found, list):
        return [], ["field 'questions': missing or not a list"]
    items, problems = [], []
    for i, q in enumerate(found):
        if not isinstance(q, str) or len(q.split()) < 4:
            problems.append(f"questions[{i}]: not a question of at least four words")
        else:
            items.append({"question": " ".join(q.split())})
    return items, problems


def expand(
    questions_path: Path, out: Path, writer: LLMClient, *, target: int, examples: int = 3, threshold: int = 10,
    seed: int = 0, max_attempts: int = 3, max_tokens: int = 1024, version: str = "v1",
) -> dict:  # fmt: skip
    """Write ``out/questions.jsonl`` (every input question, then the kept new ones) and ``expand_report.json``."""
    from .inputs import read_questions

    read_questions(questions_path)  # validated (file, line, field) before anything is sent
    rows = [dict(r) for _, r in read_records(questions_path)]
    before = Counter(int(r["subdomain_id"]) for r in rows if str(r.get("subdomain_id") or "").strip())
    prompt = load_prompt("culturax_expand", version)
    rng = random.Random(seed)
    tasks = []
    for sid, sub in sorted(SUBDOMAINS.items()):
        missing = target - before[sid]
        if missing <= 0:
            continue
        own = [r["question"] for r in rows if str(r.get("subdomain_id") or "") == str(sid)]
        shown = rng.sample(own, min(examples, len(own)))
        listed = "\n".join(f"- {q}" for q in shown) or "(none yet)"
        tasks.append(
            engine.Task(
                key=f"expand-{sid}",
                prompt=prompt,
                values={"subdomain": sub.name, "domain": sub.domain, "examples": listed},
                n_items=missing,
                parse=questions_in_reply,
                identity=lambda item: norm(item["question"], casefold=True),
            )  # fmt: skip
        )
    outcomes, stats = engine.run(writer, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
    new = []
    for task, outcome in zip(tasks, outcomes, strict=True):
        sid = int(task.key.split("-")[1])
        sub = SUBDOMAINS[sid]
        for n, item in enumerate(outcome.items):
            new.append(
                {
                    "id": f"expanded-{sid}-{n}",
                    "question": item["question"],
                    "subdomain_id": sid,
                    "subdomain": sub.name,
                    "domain": sub.domain,
                    "origin": "expanded",
                }  # fmt: skip
            )
    existing_ids = [str(r["id"]) for r in rows]
    result = deduplicate(existing_ids + [q["id"] for q in new], [r["question"] for r in rows + new], threshold)
    n_old = len(rows)
    kept_new = [new[i - n_old] for i in result.kept if i >= n_old]
    removed = [
        {**asdict(r), "text": (rows + new)[r.index]["question"], "twin_text": (rows + new)[r.twin_index]["question"]}
        for r in result.removed
        if r.index >= n_old
    ]
    removed_existing = sum(r.index < n_old for r in result.removed)
    out.mkdir(parents=True, exist_ok=True)
    with (out / QUESTIONS).open("w", encoding="utf-8") as fh:
        for row in rows + kept_new:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    after = before + Counter(q["subdomain_id"] for q in kept_new)
    per = {
        str(sid): {"name": SUBDOMAINS[sid].name, "before": before[sid], "generated": sum(
            q["subdomain_id"] == sid for q in new), "after": after[sid], "short_of_target": max(0, target - after[sid])}
        for sid in sorted(SUBDOMAINS)
    }  # fmt: skip
    report = {
        "inputs": str(questions_path),
        "generator": engine.generator_settings(writer),
        "prompt": prompt.id,
        "settings": {"target": target, "examples": examples, "threshold": threshold, "seed": seed},
        "questions_before": n_old,
        "generated": len(new),
        "kept": len(kept_new),
        "removed_near_duplicates": removed,
        "existing_near_duplicates_left_alone": removed_existing,
        "per_subdomain": per,
        "incomplete_tasks": [o.report() for o in outcomes if not o.complete],
        "stats": asdict(stats),
    }
    (out / REPORT).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report
