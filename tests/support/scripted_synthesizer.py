"""A scripted LLM for the synthesis tests: answers ``culturesafe synthesize``'s prompts through the stand-in.

Queries: ``<culture> <topic> customs <i>`` (specific ones name the task). Docs: the first example doc's keys
with values of the same types: text fields made of pseudo-random words seeded by the passage (far apart in
SimHash), an ``options`` list of four distinct words, ints and bools copied from the example (in range by
construction), evidence = the passage's first six words. A passage holding ``VERBATIM`` gives a doc whose
first text field is the passage's sentence after that marker (how an evaluation item planted in the corpus
comes back); ``NOANSWER`` makes the answer stage's evidence miss the passage; ``PROSE`` gives an unparseable
first reply; ``UNGROUNDED`` evidence that is not in the passage.
"""

from __future__ import annotations

import json
import re

from support.scripted_generator import words


def _tag(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}> ?(.*?) ?</{tag}>", text, re.DOTALL)
    return found.group(1).strip() if found else ""


def _value(example: object, seed: str, key: str, verbatim: str | None) -> object:
    if isinstance(example, str):
        return verbatim if verbatim else " ".join(words(f"{seed}-{key}", 9)).capitalize() + "?"
    if isinstance(example, list):
        return [" ".join(words(f"{seed}-{key}-{i}", 2)) for i in range(len(example))]
    return example


def judge_score(query: str) -> int:
    """The scripted judge's respectfulness score for an answer to ``query``: 9 or 3, fixed per query."""
    return 9 if sum(map(ord, query.strip())) % 2 else 3


def respond(messages: list[dict]) -> str:
    system, user = messages[0]["content"], messages[1]["content"]
    if "evaluate the response of an LLM" in system:
        return json.dumps({"score": judge_score(_tag(user, "QUERY"))})
    attempt = (len(messages) - 2) // 2
    culture = _tag(user, "CULTURE")
    if "You answer a user's request" in system:
        passage = _tag(user, "PASSAGE")
        evidence = " ".join(passage.split()[:6]) if "NOANSWER" not in passage else "not in the passage at all"
        answer = f"In {culture}, {evidence.lower()} - so I would keep to that custom and suggest a respectful way."
        return json.dumps({"answer": answer, "evidence": evidence})
    if "web search queries" in system:
        n = int(re.search(r"Write (\d+) different search queries", user).group(1))
        topic = "norms etiquette" if "norms and customs" in user else "task " + _tag(user, "TASK")
        return json.dumps({"queries": [f"{culture} {topic} customs {i + 10 * attempt}" for i in range(n)]})
    n = int(re.search(r"Write (\d+) (?:different new|more)", messages[-1]["content"]).group(1))
    passage = _tag(user, "PASSAGE")
    if "PROSE" in passage and attempt == 0:
        return "Here are some lovely examples about this culture!"
    example = json.loads(_tag(user, "EXAMPLE_DOCS").splitlines()[0])
    evidence = " ".join(passage.split()[:6]) if "UNGROUNDED" not in passage else "words that are not there at all"
    marker = re.search(r"VERBATIM (.+?[?.])", passage)
    docs = []
    for i in range(n):
        seed = f"{passage[:80]}-{attempt}-{i}"
        verbatim = marker.group(1) if marker and i == 0 else None
        first_text = next((k for k, v in example.items() if isinstance(v, str) and k != "country"), None)
        doc = {k: _value(v, seed, k, verbatim if k == first_text else None) for k, v in example.items()}
        if "country" in doc:
            doc["country"] = culture
        docs.append({"doc": doc, "evidence": evidence})
    return "```json\n" + json.dumps({"docs": docs}) + "\n```"
