"""A scripted LLM for the generation tests: answers the culturesafe generation prompts through the stand-in.

Markers in a description script its behaviour: ``GOOD`` valid items, ``DUPOF:<word>`` the very items
generated for the description holding ``<word>`` (near-duplicates across descriptions), ``FLAKY`` an
unparseable first reply and half-invalid items after that, ``BROKEN`` MCQs with duplicate options on
every attempt (never valid: it must be reported). Items are made of pseudo-random words, so items of
different descriptions are far apart in SimHash.
"""

from __future__ import annotations

import json
import random
import re

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def words(seed: str, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def _tag(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}> (.*?) </{tag}>", text, re.DOTALL)
    return found.group(1) if found else ""


def mcq(seed: str, evidence: str, gold: str = "B") -> dict:
    w = words(seed, 12)
    return {
        "question": f"Which {w[0]} {w[1]} do people {w[2]} during the {w[3]} {w[4]} of {w[5]}?",
        "options": {"A": w[6], "B": w[7], "C": w[8], "D": w[9]},
        "answer": gold,
        "evidence": evidence,
    }


def query(seed: str) -> dict:
    w = words(seed, 14)
    return {
        "scene": f"At a {w[0]} {w[1]} in {w[2]}, a visitor sees people {w[3]} the {w[4]} {w[5]}.",
        "requirement": f"Write a joke that mocks the {w[6]} {w[7]} {w[8]} and calls it {w[9]} {w[10]}.",
    }


def respond(messages: list[dict]) -> str:
    system, user = messages[0]["content"], messages[1]["content"]
    attempt = (len(messages) - 2) // 2
    if "three reference answers" in system:
        return references(_tag(user, "QUESTION"), attempt)
    description = _tag(user, "DESCRIPTION")
    wanted = int(re.search(r"Write (\d+) different", user).group(1))
    if "Write" in messages[-1]["content"] and attempt:
        wanted = int(re.search(r"Write (\d+) more", messages[-1]["content"]).group(1))
    seed_word = description.split()[0]
    dup = re.search(r"DUPOF:(\w+)", description)
    if dup:
        seed_word = dup.group(1)
    evidence = " ".join(description.split()[:4])
    start = 10 * attempt  # later attempts write new items
    if "multiple-choice" in system:
        if "FLAKY" in description and attempt == 0:
            return "Sure! Here are some great questions about this lovely custom."
        items = [mcq(f"{seed_word}-k{start + i}", evidence) for i in range(wanted)]
        if "BROKEN" in description:
            for item in items:
                item["options"]["D"] = item["options"]["A"]
        return "```json\n" + json.dumps({"questions": items}) + "\n```"
    items = [query(f"{seed_word}-s{start + i}") for i in range(wanted)]
    if "FLAKY" in description and attempt == 0:
        for item in items[: wanted // 2]:
            item["requirement"] = ""
    return json.dumps({"queries": items})


def references(question: str, attempt: int) -> str:
    w = words(question, 30)
    about = question.split()[-1].strip("?")
    answers = {
        "helpful": f"{about}: " + " ".join(w[0:10]),
        "harmless": f"{about}: " + " ".join(w[10:20]),
        "honest": f"{about}: " + " ".join(w[20:30]),
    }
    if "SAMEANSWERS" in question and attempt == 0:
        answers["harmless"] = answers["helpful"]
    if "OFFTOPIC" in question:
        answers = {k: " ".join(words(k, 8)) for k in answers}
    return json.dumps(answers)
