"""Generate AdaCultureSafe-style items for new cultural descriptions, then publish the verified ones.

:func:`generate`: descriptions -> 5 knowledge MCQs and 5 safety queries each (LLM, cached, checked,
retried) -> near-duplicates removed (each listed with its twin) -> gold letters balanced -> review
files in the work folder. :func:`publish`: the reviewers' accepted items -> the same rows and Hub
layout as the release builder (``culturesafe_ext.data.adaculturesafe_schema``, ``hub_layout.write_hub_dataset``), so
``lm_eval --metadata '{"culturesafe_data": OUT}'`` evaluates them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from culturesafe_ext.data.adaculturesafe_schema import ALL, SPLIT, config_name, features, option_letters, safety_query
from culturesafe_ext.data.textio import norm
from culturesafe_ext.llm import LLMClient

from ..adaculturesafe import gold_letter_stats
from ..hub_layout import CardText, ConfigTable, write_hub_dataset
from . import engine, review, workdir
from .balance import balance_gold
from .dedup import remove_near_duplicates
from .inputs import Description, read_descriptions
from .items import LETTERS, mcqs_in_reply, queries_in_reply
from .prompts import load_prompt

DATASET = "adaculturesafe"


def _base(d: Description) -> dict:
    return {
        "description_id": f"{d.iso_alpha3}/{d.id}",
        "country": d.country,
        "country_native": d.country_native,
        "iso_alpha2": d.iso_alpha2,
        "iso_alpha3": d.iso_alpha3,
        "iso_numeric": d.iso_numeric,
        "location": d.location,
        "source": d.source,
        "source_key": d.id,
        "description": d.description,
    }


def tasks_for(descriptions: list[Description], n_knowledge: int, n_safety: int, version: str) -> list[engine.Task]:
    """One knowledge task and one safety task per description."""
    k_prompt, s_prompt = load_prompt("knowledge", version), load_prompt("safety", version)
    tasks = []
    for d in descriptions:
        values = {"description": d.description, "country": d.country, "location": d.location}
        tasks.append(
            engine.Task(
                key=f"{d.id}/knowledge",
                prompt=k_prompt,
                values=values,
                n_items=n_knowledge,
                parse=lambda obj, text=d.description: mcqs_in_reply(obj, text),
                identity=lambda item: norm(item["question"], casefold=True),
            )
        )
        tasks.append(
            engine.Task(
                key=f"{d.id}/safety",
                prompt=s_prompt,
                values=values,
                n_items=n_safety,
                parse=queries_in_reply,
                identity=lambda item: norm(item["scene"] + " " + item["requirement"], casefold=True),
            )
        )
    return tasks


def generate(
    descriptions_path: Path,
    work: Path,
    writer: LLMClient,
    *,
    n_knowledge: int = 5,
    n_safety: int = 5,
    max_attempts: int = 3,
    max_tokens: int = 1024,
    threshold: int = 10,
    seed: int = 0,
    version: str = "v1",
) -> dict:
    """Generate, check, deduplicate and balance; write candidates and review files into ``work``."""
    descriptions = read_descriptions(descriptions_path)
    tasks = tasks_for(descriptions, n_knowledge, n_safety, version)
    outcomes, stats = engine.run(writer, tasks, max_attempts=max_attempts, max_tokens=max_tokens)
    by_key = {o.key: o for o in outcomes}
    knowledge, safety = [], []
    for d in descriptions:
        base = _base(d)
        context = f"{d.description}\n(Location: {d.location}; {d.country})"
        for n, item in enumerate(by_key[f"{d.id}/knowledge"].items):
            fields = {"question": item["question"], "answer": LETTERS[item["gold_index"]]}
            fields |= {f"option_{letter}": text for letter, text in zip(LETTERS, item["options"], strict=True)}
            knowledge.append(
                {
                    "id": f"{base['description_id']}/k{n}",
                    "kind": "knowledge",
                    "context": context,
                    "fields": fields,
                    "evidence": item["evidence"],
                    "base": base,
                }
            )
        for n, item in enumerate(by_key[f"{d.id}/safety"].items):
            safety.append(
                {
                    "id": f"{base['description_id']}/s{n}",
                    "kind": "safety",
                    "context": context,
                    "fields": dict(item),
                    "base": base,
                }
            )
    knowledge, removed_k, _ = remove_near_duplicates(knowledge, lambda c: c["fields"]["question"], threshold)
    safety, removed_s, _ = remove_near_duplicates(
        safety, lambda c: safety_query(c["fields"]["scene"], c["fields"]["requirement"]), threshold
    )
    knowledge = _balance(knowledge, seed)
    candidates = knowledge + safety
    report = {
        "dataset": DATASET,
        "inputs": str(descriptions_path),
        "generator": engine.generator_settings(writer),
        "prompts": sorted({t.prompt.id for t in tasks}),
        "settings": {
            "n_knowledge": n_knowledge,
            "n_safety": n_safety,
            "max_attempts": max_attempts,
            "max_tokens": max_tokens,
            "threshold": threshold,
            "seed": seed,
        },
        "descriptions": len(descriptions),
        "countries": sorted({d.country for d in descriptions}),
        "sources": dict(sorted(Counter(d.source for d in descriptions).items())),
        "stats": asdict(stats),
        "generated": {"knowledge": len(knowledge) + len(removed_k), "safety": len(safety) + len(removed_s)},
        "incomplete_tasks": [o.report() for o in outcomes if not o.complete],
        "invalid_replies": [
            {"key": o.key, **asdict(a)} for o in outcomes if o.complete for a in o.attempts if a.problems
        ],
        "removed_near_duplicates": removed_k + removed_s,
        "candidates": {"knowledge": len(knowledge), "safety": len(safety)},
        "gold_letters": dict(sorted(Counter(c["fields"]["answer"] for c in knowledge).items())),
    }
    workdir.write(work, candidates, report)
    review.export(candidates, work / workdir.REVIEW)
    return report


def _balance(knowledge: list[dict], seed: int) -> list[dict]:
    items = [
        {
            "id": c["id"],
            "options": [c["fields"][f"option_{letter}"] for letter in LETTERS],
            "gold_index": LETTERS.index(c["fields"]["answer"]),
        }
        for c in knowledge
    ]
    out = []
    for c, b in zip(knowledge, balance_gold(items, seed), strict=True):
        fields = dict(c["fields"])
        fields |= {f"option_{letter}": text for letter, text in zip(LETTERS, b["options"], strict=True)}
        fields["answer"] = LETTERS[b["gold_index"]]
        out.append({**c, "fields": fields})
    return out


def rows_of(kept: list[dict]) -> tuple[list[dict], list[dict]]:
    """Knowledge and safety rows in the release builder's features."""
    knowledge, safety = [], []
    for c in kept:
        f = c["fields"]
        if c["kind"] == "knowledge":
            options = [f[f"option_{letter}"] for letter in LETTERS]
            gold = LETTERS.index(f["answer"])
            knowledge.append(
                {
                    "id": c["id"],
                    **c["base"],
                    "question": f["question"],
                    "options": options,
                    "gold_index": gold,
                    "gold_letter": option_letters(4)[gold],
                }
            )
        else:
            query = safety_query(f["scene"], f["requirement"])
            safety.append(
                {"id": c["id"], **c["base"], "scene": f["scene"], "requirement": f["requirement"], "query": query}
            )
    return knowledge, safety


def publish(out: Path, decisions: dict, report: dict, candidates: list[dict]) -> dict:
    """Write the verified items as the Hub layout in ``out``; return the build report."""
    kept, counts = review.apply(candidates, decisions)
    knowledge, safety = rows_of(kept)
    countries = report["countries"]
    tables = []
    for kind, rows in (("knowledge", knowledge), ("safety", safety)):
        for country in [ALL, *countries]:
            subset = [r for r in rows if country == ALL or r["country"] == country]
            tables.append(ConfigTable(config_name(kind, country), SPLIT, features(kind), subset))
    empty = [t.config for t in tables if not t.rows]
    tables = [t for t in tables if t.rows]  # `datasets` cannot load a declared split with no rows
    build = {
        "generation": {k: v for k, v in report.items() if k not in ("invalid_replies",)},
        "empty_configs_not_written": empty,
        "review": counts,
        "rows": {"knowledge": len(knowledge), "safety": len(safety)},
        "gold_letters": gold_letter_stats(knowledge),
        "per_country": {
            c: {
                "knowledge": sum(r["country"] == c for r in knowledge),
                "safety": sum(r["country"] == c for r in safety),
            }
            for c in countries
        },
    }
    write_hub_dataset(out, tables, _card(build, countries))
    (out / "build_report.json").write_text(json.dumps(build, ensure_ascii=False, indent=2), encoding="utf-8")
    return build


def _card(build: dict, countries: list[str]) -> CardText:
    gen, counts, stats = build["generation"], build["review"], build["generation"]["stats"]
    gold = build["gold_letters"]
    dist = ", ".join(f"{k}: {v} ({v / gold['n']:.1%})" for k, v in gold["distribution"].items()) or "no questions"
    table = ["| country | knowledge MCQs | safety queries |", "|---|---|---|"]
    table += [f"| {c} | {v['knowledge']} | {v['safety']} |" for c, v in build["per_country"].items()]
    model = gen["generator"].get("model", "?")
    return CardText(
        pretty_name=f"AdaCultureSafe-style benchmark ({', '.join(countries)})",
        summary=(
            "Knowledge multiple-choice questions and adversarial cultural-safety queries (a scene plus a "
            "requirement that pushes the model to belittle a custom), generated by an LLM from cultural "
            "descriptions with `culturesafe generate adaculturesafe` and verified by people. Evaluate with "
            "`lm_eval --tasks adaculturesafe_knowledge_<country> --metadata "
            '\'{"culturesafe_data": "<this dataset>"}\'`.'
        ),
        sections=[
            (
                "Generation",
                f"Generator: `{gen['generator'].get('backend')}` model `{model}` (temperature "
                f"{gen['generator'].get('temperature', 0)}), prompts {', '.join(f'`{p}`' for p in gen['prompts'])}, "
                f"at most {gen['settings']['max_attempts']} attempts per description and kind. "
                f"{gen['descriptions']} descriptions -> {stats['tasks']} generation tasks: "
                f"{stats['complete']} complete, "
                f"{stats['incomplete']} short of items after the last attempt. {stats['requests']} requests "
                f"({stats['sent']} sent, {stats['cached']} from the cache); "
                f"{stats['failed_requests']} failed requests, "
                f"{stats['unparseable_replies']} replies without a JSON object, {stats['replies_with_invalid_items']} "
                f"replies with invalid items ({stats['item_problems']} problems). Items generated: "
                f"{gen['generated']['knowledge']} MCQs, {gen['generated']['safety']} safety queries. Every invalid "
                "reply is listed in the work folder's `generation_report.json`.",
            ),
            (
                "Near-duplicates",
                f"SimHash (64-bit, `simhash` package) with Hamming threshold {gen['settings']['threshold']}: "
                f"{len(gen['removed_near_duplicates'])} items removed, each listed in `build_report.json` with the "
                "kept item it duplicated and their distance.",
            ),
            (
                "Human verification",
                f"{counts['candidates']} candidates; {counts['reviewed']} reviewed: {counts['accepted']} accepted, "
                f"{counts['edited']} edited (kept), {counts['rejected']} rejected; {counts['unreviewed']} not "
                "reviewed (not published). Only accepted and edited items are in this dataset.",
            ),
            ("Counts", "\n".join(table) + _empty_note(build["empty_configs_not_written"])),
            ("Sources", _sources(gen.get("sources", {}))),
            (
                "Gold letters and trivial baselines",
                f"Options were shuffled with a seeded RNG (seed {gen['settings']['seed']}) so that gold letters "
                f"are uniform among the candidates (the public release has B or C as gold for 4,145 of its 4,385 "
                f"questions, 94.5%). Distribution over the {gold['n']} published MCQs: {dist}. Always answering "
                f"**{gold['most_frequent_letter']}** scores {gold['most_frequent_letter_baseline']:.1%}; random "
                f"choice scores {gold['random_baseline']:.1%}.",
            ),
        ],
        tags=["cultural-safety", "cultural-knowledge", "lm-eval", "synthetic"],
    )


def _sources(sources: dict[str, int]) -> str:
    """Where the descriptions came from (each row's ``source``): a URL, a file or a guide's name."""
    lines = ["| source | descriptions |", "|---|---|"] + [f"| {s} | {n} |" for s, n in sources.items()]
    return "Each row's `source` column names the source of its description.\n\n" + "\n".join(lines)


def _empty_note(empty: list[str]) -> str:
    return (
        f"\n\nConfigs with no rows are not written (`datasets` cannot load an empty split): {', '.join(empty)}."
        if empty
        else ""
    )
