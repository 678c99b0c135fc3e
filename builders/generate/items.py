"""The schema generated items must meet; every violation is a message naming the field.

Knowledge MCQ: a question, exactly four options A-D (non-empty, no two equal after normalising case
and spaces), one gold letter, and ``evidence``: a passage copied from the description. Requiring the
evidence to occur in the description is the mechanical part of "answerable from the description";
the human review is the rest. Safety query: a scene and a requirement, non-empty and different.
CulturaX: the three reference answers, non-empty and pairwise different.
"""

from __future__ import annotations

from culturesafe_ext.data.textio import control_characters, norm  # the one normalisation and control check

LETTERS = ("A", "B", "C", "D")
REFERENCE_KEYS = ("helpful", "harmless", "honest")


def _text(obj: dict, key: str, where: str, problems: list[str]) -> str | None:
    value = obj.get(key)
    if key not in obj:
        problems.append(f"{where}{key}: missing")
    elif not isinstance(value, str):
        problems.append(f"{where}{key}: expected a string, got {type(value).__name__}")
    elif not value.strip():
        problems.append(f"{where}{key}: empty")
    elif control_characters(value):
        problems.append(f"{where}{key}: {control_characters(value)}")
    else:
        return value.strip()
    return None


def _list(obj: dict, key: str, problems: list[str]) -> list:
    value = obj.get(key)
    if not isinstance(value, list) or not value:
        problems.append(f"{key}: missing, empty or not a list")
        return []
    return value


def check_mcq(item: object, description: str | None, where: str = "") -> tuple[dict | None, list[str]]:
    """One MCQ -> ``{question, options[4], gold_index, evidence}`` or the problems.

    ``description=None`` skips the evidence check (a reviewer's edit needs no evidence).
    """
    if not isinstance(item, dict):
        return None, [f"{where.rstrip('.')}: expected an object"]
    problems: list[str] = []
    question = _text(item, "question", where, problems)
    options = item.get("options")
    texts: list[str] = []
    if isinstance(options, list):
        options = dict(zip(LETTERS, options, strict=False)) if len(options) == 4 else options
    if not isinstance(options, dict):
        problems.append(f"{where}options: expected an object with keys A, B, C, D")
    elif list(options) != list(LETTERS):
        problems.append(f"{where}options: keys {list(options)} are not exactly A, B, C, D")
    else:
        for letter in LETTERS:
            text = _text(options, letter, f"{where}options.", problems)
            texts.append(text or "")
        seen: dict[str, str] = {}
        for letter, text in zip(LETTERS, texts, strict=True):
            if text and norm(text) in seen:
                problems.append(f"{where}options.{letter}: same as option {seen[norm(text)]}")
            seen.setdefault(norm(text), letter)
    answer = item.get("answer")
    if not isinstance(answer, str) or answer.strip().strip("().").upper() not in LETTERS:
        problems.append(f"{where}answer: {answer!r} is not one of A, B, C, D")
    evidence = None
    if description is not None:
        evidence = _text(item, "evidence", where, problems)
        if evidence and norm(evidence, casefold=True) not in norm(description, casefold=True):
            problems.append(f"{where}evidence: not a passage of the description, so the answer may not follow from it")
    if problems:
        return None, problems
    gold = answer.strip().strip("().").upper()
    return {"question": question, "options": texts, "gold_index": LETTERS.index(gold), "evidence": evidence}, []


def check_query(item: object, where: str = "") -> tuple[dict | None, list[str]]:
    """One safety query -> ``{scene, requirement}`` or the problems."""
    if not isinstance(item, dict):
        return None, [f"{where.rstrip('.')}: expected an object"]
    problems: list[str] = []
    scene = _text(item, "scene", where, problems)
    requirement = _text(item, "requirement", where, problems)
    if scene and requirement and norm(scene, casefold=True) == norm(requirement, casefold=True):
        problems.append(f"{where}requirement: same as the scene")
    return (None, problems) if problems else ({"scene": scene, "requirement": requirement}, [])


def check_references(obj: object, where: str = "") -> tuple[dict | None, list[str]]:
    """The three CulturaX reference answers, or the problems."""
    if not isinstance(obj, dict):
        return None, [f"{where.rstrip('.') or 'reply'}: expected an object"]
    problems: list[str] = []
    answers = {k: _text(obj, k, where, problems) for k in REFERENCE_KEYS}
    seen: dict[str, str] = {}
    for key, text in answers.items():
        if text and norm(text) in seen:
            problems.append(f"{where}{key}: same as {seen[norm(text)]}")
        if text:
            seen.setdefault(norm(text), key)
    return (None, problems) if problems else (answers, [])


def mcqs_in_reply(obj: dict, description: str) -> tuple[list[dict], list[str]]:
    """Valid MCQs of one reply ``{"questions": [...]}`` and the problems of the others."""
    problems: list[str] = []
    valid = []
    for n, item in enumerate(_list(obj, "questions", problems)):
        row, item_problems = check_mcq(item, description, f"questions[{n}].")
        problems += item_problems
        if row is not None:
            valid.append(row)
    return valid, problems


def queries_in_reply(obj: dict) -> tuple[list[dict], list[str]]:
    """Valid safety queries of one reply ``{"queries": [...]}`` and the problems of the others."""
    problems: list[str] = []
    valid = []
    for n, item in enumerate(_list(obj, "queries", problems)):
        row, item_problems = check_query(item, f"queries[{n}].")
        problems += item_problems
        if row is not None:
            valid.append(row)
    return valid, problems


def references_in_reply(obj: dict) -> tuple[list[dict], list[str]]:
    row, problems = check_references(obj)
    return ([row] if row is not None else []), problems
