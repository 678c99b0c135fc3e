"""Scripted LLMs for the curation pipelines (``generate descriptions`` and the CulturaX Stage I commands).

Deterministic functions of the chat messages, served by :class:`support.openai_standin.StandIn`:
:func:`describe` decomposes a source text sentence by sentence (each description's evidence is its own sentence,
so the mechanical check passes) and adds one entry whose evidence the text does not hold (it must be rejected);
sentences shared by two sources give the same description twice (a near-duplicate across sources).
"""

from __future__ import annotations

import json
import re


def tag(text: str, name: str) -> str:
    found = re.search(rf"<{name}> (.*?) </{name}>", text, re.DOTALL)
    return found.group(1) if found else ""


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.strip()) > 30]


def describe(messages: list[dict]) -> str:
    user = messages[1]["content"]
    country, text = tag(user, "COUNTRY"), tag(user, "TEXT")
    if "NOCUSTOMS" in text:
        return "I could not find any customs here, sorry."  # no JSON: retried, then reported
    entries = [
        {
            "custom": " ".join(s.split()[:3]),
            "location": country,
            "description": f"In {country}: {s}",
            "evidence": s,
        }
        for s in sentences(text)[:4]
    ]
    entries.append(
        {
            "custom": "invented",
            "location": country,
            "description": f"In {country} everyone juggles at weddings.",
            "evidence": "Everyone juggles flaming torches at weddings.",
        }  # fmt: skip
    )
    return json.dumps({"descriptions": entries})


# ---- CulturaX Stage I -------------------------------------------------------------------------------------------

KEYWORDS = (  # a deterministic keyword classifier: the first matching subdomains get 0.8 and 0.6
    ("Festivals", ("festival", "holi", "diwali", "carnival", "new year", "celebrat")),
    ("Culinary Arts", ("food", "dish", "cuisine", "eat", "cook", "recipe", "tea", "meal")),
    ("Language", ("language", "word", "speak", "dialect", "greet", "phrase")),
    ("Dance", ("dance", "dancing")),
    ("Crafts", ("craft", "weav", "pottery", "carv", "textile")),
    ("Folk Sports", ("sport", "martial", "wrestl", "race")),
    ("Theatrical Performance", ("theat", "drama", "puppet", "perform")),
    ("Festivals and Markets", ("market", "fair", "bazaar", "ceremony", "ritual", "wedding")),
    ("Fashion Design", ("cloth", "dress", "fashion", "wear", "attire")),
    ("Social Networks", ("social media", "online", "instagram", "tiktok", "facebook")),
    ("Film and Video", ("film", "movie", "cinema")),
    ("Musical Instruments", ("instrument", "drum", "music")),
)


def classify(messages: list[dict]) -> str:
    question = tag(messages[1]["content"], "QUESTION")
    attempt = (len(messages) - 2) // 2
    if "ODDLABEL" in question and attempt == 0:
        return json.dumps({"scores": {"Astrology": 0.9}})  # not a UNESCO subdomain: rejected, then retried
    lowered = question.lower()
    hits = [name for name, words in KEYWORDS if any(w in lowered for w in words)]
    if not hits:
        return json.dumps({"scores": {"Festivals": 0.3}})  # nothing >= 0.5: listed, not dropped
    return json.dumps({"scores": dict(zip(hits[:2], (0.8, 0.6), strict=False))})


def expand(messages: list[dict]) -> str:
    from support.scripted_generator import words

    user = messages[1]["content"]
    subdomain = tag(user, "SUBDOMAIN")
    wanted = int(re.search(r"Write (\d+) different new questions", user).group(1))
    examples = [line[2:] for line in tag(user, "EXAMPLES").splitlines() if line.startswith("- ")]
    out = [
        " ".join(words(f"{subdomain}-{i}", 10)).capitalize() + "?"  # random words: far apart in SimHash
        for i in range(wanted)
    ]
    if examples:
        out[0] = examples[0]  # a copy of an existing question: removed as a near-duplicate
    return json.dumps({"questions": out})


def write_reference(messages: list[dict]) -> str:
    from support.scripted_generator import words

    user = messages[1]["content"]
    question, goal, feedback = tag(user, "QUESTION"), tag(user, "GOAL"), tag(user, "FEEDBACK")
    first_round = feedback.startswith("(none")
    body = " ".join(words(question + goal + user[-40:], 12))
    if "NEVER" in question or ("REJECTFIRST" in question and first_round):
        return f"BAD {goal} answer: {body}"
    return f"A careful {goal} answer to the question: {body}."


def critic(messages: list[dict]) -> str:
    answer = tag(messages[1]["content"], "ANSWER")
    if answer.startswith("BAD"):
        return json.dumps({"score": 2, "critique": "Too vague: name the custom and where it holds."})
    return json.dumps({"score": 8, "critique": "Clear and respectful."})


def stage1(messages: list[dict]) -> str:
    """Every CulturaX Stage I prompt, routed by its system message."""
    system = messages[0]["content"]
    if "You classify questions" in system:
        return classify(messages)
    if "You write new questions" in system:
        return expand(messages)
    if "HHH-quality critic" in system:
        return critic(messages)
    return write_reference(messages)
