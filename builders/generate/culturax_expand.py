"""AlignCultura's Stage I step 2: domain expansion of under-represented subdomains, then SimHash dedup (step 3).

For each UNESCO subdomain with fewer than ``target`` questions, a generator writes the missing number from a few of
that subdomain's own questions (seeded choice) through the one LLM client (cached: a resumed run sends nothing
twice). The new questions are deduplicated against every existing question and each other (SimHash, Hamming τ,
existing questions first so they always win); each removed one is listed with its twin. A subdomain still short
is asked again (``refill_rounds``), the questions already written listed to avoid. The report gives the counts
per subdomain before and after, and what is still short.
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
    seed: int = 0, max_attempts: int = 3, max_tokens: int = 1024, refill_rounds: int = 2, version: str = "v1",
) -> dict:  # fmt: skip
    """Write ``out/questions.jsonl`` (every input question, then the kept new ones) and ``expand_report.json``.

    A subdomain still short after near-duplicate removal is asked again, with the questions already written for it
    listed to avoid, at most ``refill_rounds`` times; what is still short is reported per subdomain."""
    from .inputs import read_questions

    read_questions(questions_path)  # validated (file, line, field) before anything is sent
    rows = [dict(r) for _, r in read_records(questions_path)]
    before = Counter(int(r["subdomain_id"]) for r in rows if str(r.get("subdomain_id") or "").strip())
    prompt = load_prompt("culturax_expand", version)
    rng = random.Random(seed)
    shown: dict[int, str] = {}
    for sid in sorted(SUBDOMAINS):
        own = [r["question"] for r in rows if str(r.get("subdomain_id") or "") == str(sid)]
        shown[sid] = "\n".join(f"- {q}" for q in rng.sample(own, min(examples, len(own)))) or "(none yet)"
    kept_new: list[dict] = []
    generated: Counter[int] = Counter()
    removed: list[dict] = []
    removed_existing = 0
    stats_rounds = []
    for rnd in range(refill_rounds + 1):
        have = before + Counter(q["subdomain_id"] for q in kept_new)
        tasks = []
        for sid, sub in sorted(SUBDOMAINS.items()):
            if target - have[sid] <= 0:
                continue
            # kept and rejected ones: an unchanged prompt would get the same (cached) reply again
            tried = [f"- {q['question']}" for q in kept_new if q["subdomain_id"] == sid]
            tried += [f"- {r['text']} (round {r['round']}: rejected, too close to an existing question)"
                      for r in removed if r["subdomain_id"] == sid]  # fmt: skip
            written = "\n".join(tried) or "(none yet)"
            tasks.append(
                engine.Task(
                    key=f"expand-{sid}-r{rnd}",
                    prompt=prompt,
                    values={"subdomain": sub.name, "domain": sub.domain, "examples": shown[sid], "written": written},
                    n_items=target - have[sid],
                    parse=questions_in_reply,
                    identity=lambda item: norm(item["question"], casefold=True),
                )  # fmt: skip
            )
        if not tasks:
            break
        outcomes, stats = engine.run(writer, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
        stats_rounds.append({"round": rnd, "subdomains": len(tasks), **asdict(stats)})
        batch = []
        for task, outcome in zip(tasks, outcomes, strict=True):
            sid = int(task.key.split("-")[1])
            sub = SUBDOMAINS[sid]
            for item in outcome.items:
                generated[sid] += 1
                batch.append(
                    {
                        "id": f"expanded-{sid}-{generated[sid] - 1}",
                        "question": item["question"],
                        "subdomain_id": sid,
                        "subdomain": sub.name,
                        "domain": sub.domain,
                        "origin": "expanded",
                    }  # fmt: skip
                )
        # every existing question and every kept new one first: they always win against this round's
        pool = rows + kept_new + batch
        result = deduplicate([str(r["id"]) for r in pool], [r["question"] for r in pool], threshold)
        first_new = len(rows) + len(kept_new)
        removed_existing = sum(r.index < len(rows) for r in result.removed)
        removed += [
            {
                **asdict(r),
                "round": rnd,
                "subdomain_id": pool[r.index]["subdomain_id"],
                "text": pool[r.index]["question"],
                "twin_text": pool[r.twin_index]["question"],
            }  # fmt: skip
            for r in result.removed
            if r.index >= first_new
        ]
        kept_new += [pool[i] for i in result.kept if i >= first_new]
    new_count = sum(generated.values())
    out.mkdir(parents=True, exist_ok=True)
    with (out / QUESTIONS).open("w", encoding="utf-8") as fh:
        for row in rows + kept_new:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    after = before + Counter(q["subdomain_id"] for q in kept_new)
    per = {
        str(sid): {"name": SUBDOMAINS[sid].name, "before": before[sid], "generated": generated[sid],
                   "after": after[sid], "short_of_target": max(0, target - after[sid])}
        for sid in sorted(SUBDOMAINS)
    }  # fmt: skip
    report = {
        "inputs": str(questions_path),
        "generator": engine.generator_settings(writer),
        "prompt": prompt.id,
        "settings": {
            "target": target,
            "examples": examples,
            "threshold": threshold,
            "seed": seed,
            "refill_rounds": refill_rounds,
        },  # fmt: skip
        "questions_before": len(rows),
        "generated": new_count,
        "kept": len(kept_new),
        "removed_near_duplicates": removed,
        "existing_near_duplicates_left_alone": removed_existing,
        "per_subdomain": per,
        "rounds": stats_rounds,
    }
    (out / REPORT).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report
