"""The project's one parser for the JSON objects that models and judges are asked to return.

Models are told to answer ``{"answer": "B"}`` and judges ``{"score": 7}``; real outputs wrap that in
code fences, prose or trailing text. :func:`find_json_object` is the single place that digs the
object out; callers decide what a valid value is and count everything else as a failure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from culturesafe_ext.data.textio import norm

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


def find_json_object(text: str) -> dict | None:
    """Return the first JSON object in ``text`` (inside a code fence or bare), else ``None``."""
    if not isinstance(text, str):
        return None
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        start = chunk.find("{")
        while start != -1:
            try:
                obj, _ = _DECODER.raw_decode(chunk, start)
            except json.JSONDecodeError:
                start = chunk.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                return obj
            start = chunk.find("{", start + 1)
    return None


# A letter, then the text attached to it: "A. text", "A) text", "(A) text", "A: text", "A - text".
_SEPARATOR = r"[.:\-\u2013\u2014]"
_LEAD_IN = r"(?:(?:the\s+)?(?:correct\s+)?answer\s*(?:is\s*:?|:)\s*)?"  # "The answer is", "Answer:"
_LETTER_WITH_TEXT = re.compile(
    rf"\s*{_LEAD_IN}\(?([A-Za-z])(?:\)\s*{_SEPARATOR}?|\s*{_SEPARATOR})\s*(\S.*?)\s*", re.DOTALL | re.IGNORECASE
)
_LETTER_ONLY = re.compile(r"\s*\(?([A-Za-z])\)?\.?\s*")


@dataclass(frozen=True)
class ChoiceAnswer:
    """The letter a model chose (``None``: invalid) and whether it came with its option's text."""

    letter: str | None
    with_text: bool = False


def _letter_of(value: str, valid: dict[str, str | None]) -> ChoiceAnswer:
    """One answer string: a bare letter, or a letter whose attached text is that option's own text."""
    bare = _LETTER_ONLY.fullmatch(value)
    if bare:
        letter = bare.group(1).upper()
        return ChoiceAnswer(letter if letter in valid else None)
    attached = _LETTER_WITH_TEXT.fullmatch(value)
    if attached:
        letter, said = attached.group(1).upper(), attached.group(2)
        option = valid.get(letter)
        if option is not None and norm(said) == norm(option):
            return ChoiceAnswer(letter, with_text=True)
        # case may differ only when no other option matches without case ("CHEN Emily" vs "Chen Emily")
        folded = [t for t in valid.values() if t is not None and norm(t, True) == norm(said, True)]
        if option is not None and folded == [option]:
            return ChoiceAnswer(letter, with_text=True)
    return ChoiceAnswer(None)


def parse_choice_answer(text: str, letters: list[str], options: list[str] | None = None) -> ChoiceAnswer:
    """The letter a model chose and how; ``letter=None`` when it did not choose exactly one valid letter.

    Accepts ``{"answer": "B"}`` (also fenced) and, failing JSON, a reply that is only the letter
    (``B``, ``B.``, ``(B)``). With ``options`` (the option texts in letter order), a letter followed by
    its own option's text is accepted too (``{"answer": "B. Red envelopes"}``, also after "The answer
    is" or "Answer:"; compared with the project's one normalisation) and marked ``with_text``. "B/C",
    "A or B", a letter with another option's text, prose naming no letter, an unknown letter or a
    missing key are all invalid: unlike the upstream scorer, a letter merely occurring in the answer is
    not a hit.
    """
    texts = list(options) if options is not None else [None] * len(letters)
    valid = {letter.upper(): t for letter, t in zip(letters, texts, strict=True)}
    obj = find_json_object(text)
    if obj is not None:
        value = obj.get("answer")
        return _letter_of(value, valid) if isinstance(value, str) else ChoiceAnswer(None)
    return _letter_of(text or "", valid) if isinstance(text, str) else ChoiceAnswer(None)


def parse_choice_letter(text: str, letters: list[str], options: list[str] | None = None) -> str | None:
    """The letter a model chose, or ``None`` (see :func:`parse_choice_answer`)."""
    return parse_choice_answer(text, letters, options).letter


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_SCORE_LABEL = re.compile(rf"\bscore\b\W{{0,4}}?\s*[:=]\s*\**\s*({_NUMBER})", re.IGNORECASE)
_BARE = re.compile(rf"\s*\**\s*({_NUMBER})\s*\**\s*\.?\s*")


def _in_range(value: object, low: float, high: float) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value:  # NaN != NaN
        return None
    return float(value) if low <= value <= high else None


def _single(values: list[str], low: float, high: float) -> float | None:
    """The one value all matches agree on, if it is in range; disagreeing matches are ambiguous."""
    distinct = {float(v) for v in values}
    return _in_range(distinct.pop(), low, high) if len(distinct) == 1 else None


def parse_score(text: str, low: int = 1, high: int = 10, key: str = "score") -> float | None:
    """The judge's score, or ``None`` when the output holds no single valid score in ``[low, high]``.

    Accepts ``{"score": 7}`` (also fenced, also ``"7"`` as a string) and, when the output has no JSON
    object, the plain forms ``Score: 7``, ``7/10`` and a bare ``7``. A JSON object without ``key``, a
    value out of range, two different plain scores, or prose are all failures: the caller counts them
    and keeps the raw text instead of silently dropping them as the upstream scorer does.
    """
    if not isinstance(text, str):
        return None
    obj = find_json_object(text)
    if obj is not None:
        return _in_range(obj.get(key), low, high)
    if key != "score":  # plain forms only name the single-dimension "score"
        return None
    labelled = _SCORE_LABEL.findall(text)
    if labelled:
        return _single(labelled, low, high)
    over = re.findall(rf"({_NUMBER})\s*/\s*{high}\b", text)
    if over:
        return _single(over, low, high)
    bare = _BARE.fullmatch(text)
    return _in_range(bare.group(1), low, high) if bare else None


def parse_choice(text: str, key: str, choices: list[str]) -> str | None:
    """``{key: one of choices}`` (case-insensitive, as given in ``choices``), else ``None``.

    E.g. a pairwise verdict ``{"winner": "A"}`` with choices ``["A", "B", "tie"]``. A reply without a
    JSON object, without ``key``, or with any other value is a failure for the caller to count.
    """
    obj = find_json_object(text)
    value = obj.get(key) if obj is not None else None
    if not isinstance(value, str):
        return None
    wanted = {c.lower(): c for c in choices}
    return wanted.get(value.strip().strip("().").strip().lower())


_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def parse_flags(text: str, keys: list[str] | tuple[str, ...]) -> dict[str, bool] | None:
    """``{"truthful": true, "informative": "no"}`` -> booleans for every key in ``keys``, else ``None``.

    Accepts JSON booleans, 0/1 and the strings true/false/yes/no. A missing key or any other value
    makes the whole reply a failure (``None``): half a verdict is not a verdict.
    """
    obj = find_json_object(text)
    if obj is None:
        return None
    out: dict[str, bool] = {}
    for key in keys:
        value = obj.get(key)
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int) and value in (0, 1):
            out[key] = bool(value)
        elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            out[key] = value.strip().lower() in _TRUE
        else:
            return None
    return out
