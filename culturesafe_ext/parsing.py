"""The project's one parser for the JSON objects that models and judges are asked to return.

Models are told to answer ``{"answer": "B"}`` and judges ``{"score": 7}``; real outputs wrap that in
code fences, prose or trailing text. :func:`find_json_object` is the single place that digs the
object out; callers decide what a valid value is and count everything else as a failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from culturesafe_ext.data.textio import norm

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


def find_json_object(text: str) -> dict | None:
    """Return the first JSON object in ``text`` (inside a code fence or bare), else ``None``.

    Reasoning blocks (``<think>...</think>``) are set aside first (:func:`final_answer`).
    """
    text = final_answer(text)
    if text is None:
        return None
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        for obj, _, _ in _scan_objects(chunk, _DECODER):
            return obj
    return None


# A letter, then the text attached to it: "A. text", "A) text", "(A) text", "A: text", "A - text".
_SEPARATOR = r"[.:\-\u2013\u2014]"
_LEAD_IN = r"(?:(?:the\s+)?(?:correct\s+)?answer\s*(?:is\s*:?|:)\s*)?"  # "The answer is", "Answer:"
_QUOTE = "[\"'\u201c\u201d\u2018\u2019]?"  # "B", 'B', “B”
_LETTER_WITH_TEXT = re.compile(
    rf"\s*{_LEAD_IN}{_QUOTE}\(?([A-Za-z])(?:\)\s*{_SEPARATOR}?|\s*{_SEPARATOR})\s*(\S.*?){_QUOTE}\s*",
    re.DOTALL | re.IGNORECASE,
)
_LETTER_ONLY = re.compile(rf"\s*{_LEAD_IN}{_QUOTE}\(?([A-Za-z])\)?{_QUOTE}\.?\s*", re.IGNORECASE)
# Markup a human reader looks through: **B**, __B__, *B*, `B`, <b>B</b>, <strong>B</strong>.
_MARKUP = re.compile(r"\*+|__+|`+|</?(?:b|strong|em|i|u|code|mark|span|p)\s*/?>", re.IGNORECASE)


def _unmarked(text: str) -> str:
    """``text`` without inline markdown / HTML emphasis (never letters, separators or words)."""
    return _MARKUP.sub("", text)


@dataclass(frozen=True)
class ChoiceAnswer:
    """The letter a model chose (``None``: invalid) and whether it came with its option's text."""

    letter: str | None
    with_text: bool = False


def _letter_of(value: str, valid: dict[str, str | None]) -> ChoiceAnswer:
    """One answer string: a bare letter, or a letter whose attached text is that option's own text.

    Emphasis markup and quotes around the letter (``**B**``, ``<b>B</b>``, ``"B"``) and a lead-in
    (``Answer: B``) are looked through, as a human reader would.
    """
    value = _unmarked(value)
    bare = _LETTER_ONLY.fullmatch(value)
    if bare:
        letter = bare.group(1).upper()
        return ChoiceAnswer(letter if letter in valid else None)
    attached = _LETTER_WITH_TEXT.fullmatch(value)
    if attached:
        letter, said = attached.group(1).upper(), attached.group(2)
        option = valid.get(letter)
        if option is not None and norm(said) == norm(_unmarked(option)):
            return ChoiceAnswer(letter, with_text=True)
        # case may differ only when no other option matches without case ("CHEN Emily" vs "Chen Emily")
        folded = [t for t in valid.values() if t is not None and norm(_unmarked(t), True) == norm(said, True)]
        if option is not None and folded == [option]:
            return ChoiceAnswer(letter, with_text=True)
    return ChoiceAnswer(None)


def parse_choice_answer(text: str, letters: list[str], options: list[str] | None = None) -> ChoiceAnswer:
    """The letter a model chose and how; ``letter=None`` when it did not choose exactly one valid letter.

    Accepts ``{"answer": "B"}`` (also fenced) and, failing JSON, a reply that is only the letter
    (``B``, ``B.``, ``(B)``, ``B)``, ``"B"``, ``**B**``, ``<b>B</b>``, ``Answer: B``).
    With ``options`` (the option texts in letter order), a letter followed by
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
_REASONING_TAGS = r"think|thinking|thought|reasoning|reflection|scratchpad"
_REASONING_BLOCK = re.compile(rf"<({_REASONING_TAGS})>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_REASONING_OPEN = re.compile(rf"<(?:{_REASONING_TAGS})>", re.IGNORECASE)
_REASONING_CLOSE = re.compile(rf"</(?:{_REASONING_TAGS})\s*>", re.IGNORECASE)
_EMPHASIS = re.compile(r"\*\*|__|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])")
_GAP_NOISE = re.compile(r"```[A-Za-z]*|[\s*_`>#|,;.\-]")


class _Conflict:
    """A key that one JSON object states twice with different values: no single verdict."""

    def __repr__(self) -> str:
        return "<conflicting duplicate key>"


_CONFLICT = _Conflict()


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        out[key] = _CONFLICT if key in out and out[key] != value else value
    return out


_VERDICT_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


@dataclass(frozen=True)
class Verdict:
    """The judge's final value for one key, or why there is none (``problem``; ``value`` is then None)."""

    value: object = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def final_answer(text: str) -> str | None:
    """The reply with reasoning blocks (``<think>...</think>`` and kin) set aside.

    Why: reasoning models draft and quote before deciding; only what follows the reasoning is the
    answer. A block opened and never closed means the model never reached an answer: ``None``. A
    closing tag without an opening one (templates that put ``<think>`` in the prompt) ends the
    reasoning too.
    """
    if not isinstance(text, str):
        return None
    body = _REASONING_BLOCK.sub("\n", text)
    if _REASONING_OPEN.search(body):
        return None
    closes = list(_REASONING_CLOSE.finditer(body))
    return body[closes[-1].end() :] if closes else body


def _scan_objects(text: str, decoder: json.JSONDecoder) -> Iterator[tuple[dict, int, int]]:
    """The one JSON scanner: each top-level object in ``text`` with its span, in order, lazily.

    Why lazy: an answer needs only the first object, a verdict all of them; both walk the same way
    (objects inside one are not repeated, text that does not parse is stepped over).
    """
    start = text.find("{")
    while start != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            yield obj, start, end
            start = text.find("{", end)
        else:
            start = text.find("{", start + 1)


def json_objects(text: str, decoder: json.JSONDecoder = _DECODER) -> list[tuple[dict, int, int]]:
    """Every top-level JSON object in ``text`` with its span, in order (objects inside one are not repeated)."""
    return list(_scan_objects(text, decoder))


def final_verdict(text: str, keys: list[str] | tuple[str, ...]) -> tuple[dict | None, str | None]:
    """The judge's final JSON verdict naming ``keys``: ``(object, None)`` or ``(None, problem)``.

    The verdict is the **last** JSON object that carries the first key, after reasoning blocks are set
    aside and markdown emphasis (``**``, ``__``) is removed: a judge that quotes the judged text or
    drafts ``{"score": 10}`` before deciding ``{"score": 3}`` scores 3. Two verdicts that end the reply
    side by side (nothing but blank space, markdown or fences between) and disagree, a key stated twice
    with different values, or a half-written JSON verdict (a reply cut off) are failures, not guesses.
    """
    body = final_answer(text)
    if body is None:
        return None, "a reasoning block was opened and never closed: no final answer"
    body = _EMPHASIS.sub("", body)
    lead = keys[0]
    found = [(obj, s, e) for obj, s, e in json_objects(body, _VERDICT_DECODER) if lead in obj]
    if not found:
        if re.search(rf'"{re.escape(lead)}"\s*:', body):
            return None, f"an incomplete JSON verdict: {lead!r} is named but no complete object holds it"
        return None, f"no JSON object with {lead!r}"
    obj, start, _ = found[-1]
    for prev, _, prev_end in reversed(found[:-1]):
        if _GAP_NOISE.sub("", body[prev_end:start]):
            break
        differ = [k for k in keys if k in prev and prev[k] != obj.get(k)]
        if differ:
            name = differ[0]
            return None, f"two different final verdicts side by side ({name}: {prev[name]!r} and {obj.get(name)!r})"
        start = prev_end
    conflicts = [k for k in keys if obj.get(k) is _CONFLICT]
    if conflicts:
        return None, f"the verdict states {conflicts[0]!r} twice with different values"
    missing = [k for k in keys if k not in obj]
    if missing:
        return None, f"the final verdict lacks {missing}"
    return obj, None


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


def check_score(text: str, low: int = 1, high: int = 10, key: str = "score") -> Verdict:
    """The judge's final score in ``[low, high]``, or why the reply holds none (see :func:`parse_score`)."""
    if not isinstance(text, str):
        return Verdict(problem="no text")
    obj, problem = final_verdict(text, [key])
    if obj is not None:
        value = _in_range(obj[key], low, high)
        if value is None:
            return Verdict(problem=f"{key!r} is {obj[key]!r}, not a number in {low}..{high}")
        after = _plain_scores(_after_last_object(text), key, high)
        if after and any(float(v) != value for v in after):
            return Verdict(problem=f"two different final scores: {value:g} and {after[-1]}")
        return Verdict(value)
    if problem is None or not problem.startswith("no JSON object") or key != "score":
        return Verdict(problem=problem)  # plain forms name only the single-dimension "score"
    body = _EMPHASIS.sub("", final_answer(text) or "").replace("*", "").replace("_", " ")
    labelled = _SCORE_LABEL.findall(body) or re.findall(rf"({_NUMBER})\s*/\s*{high}\b", body)
    if labelled:
        value = _single(labelled, low, high)
        if value is None:
            return Verdict(problem=f"no single score in {low}..{high} (found {', '.join(labelled)})")
        return Verdict(value)
    bare = _BARE.fullmatch(body)
    value = _in_range(bare.group(1), low, high) if bare else None
    return Verdict(value) if value is not None else Verdict(problem=f"no {key!r} in {low}..{high}")


def _after_last_object(text: str) -> str:
    body = _EMPHASIS.sub("", final_answer(text) or "")
    objects = json_objects(body)
    return body[objects[-1][2] :] if objects else ""


def _plain_scores(text: str, key: str, high: int) -> list[str]:
    label = re.compile(rf"\b{re.escape(key)}\b\W{{0,4}}?\s*[:=]\s*\**\s*({_NUMBER})", re.IGNORECASE)
    return label.findall(text) + re.findall(rf"({_NUMBER})\s*/\s*{high}\b", text)


def parse_score(text: str, low: int = 1, high: int = 10, key: str = "score") -> float | None:
    """The judge's score, or ``None`` when the output holds no single final score in ``[low, high]``.

    JSON first: the final verdict (:func:`final_verdict`: the last object with ``key``, reasoning set
    aside, emphasis tolerated, ``"7"`` as a string accepted); a score stated after it that differs is
    ambiguous. Only when the output has no JSON verdict at all: the plain forms ``Score: 7``, ``7/10``
    and a bare ``7``, which must all agree. A half-written JSON verdict (``{"score": 1`` cut by the
    token limit), an object without ``key``, a value out of range or prose are failures: the caller
    counts them and keeps the raw text instead of silently dropping them as the upstream scorer does.
    """
    return check_score(text, low, high, key).value  # type: ignore[return-value]


def check_choice(text: str, key: str, choices: list[str]) -> Verdict:
    """``{key: one of choices}`` in the final verdict, or why not (see :func:`parse_choice`)."""
    obj, problem = final_verdict(text, [key])
    if obj is None:
        return Verdict(problem=problem)
    value = obj[key]
    wanted = {c.lower(): c for c in choices}
    choice = wanted.get(value.strip().strip("().*_ ").strip().lower()) if isinstance(value, str) else None
    return Verdict(choice) if choice is not None else Verdict(problem=f"{key!r} is {value!r}, not one of {choices}")


def parse_choice(text: str, key: str, choices: list[str]) -> str | None:
    """``{key: one of choices}`` (case-insensitive, as given in ``choices``), else ``None``.

    E.g. a pairwise verdict ``{"winner": "A"}`` with choices ``["A", "B", "tie"]``. The final verdict
    counts (:func:`final_verdict`). A reply without a JSON object, without ``key``, or with any other
    value is a failure for the caller to count.
    """
    return check_choice(text, key, choices).value  # type: ignore[return-value]


_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def check_flags(text: str, keys: list[str] | tuple[str, ...]) -> Verdict:
    """Booleans for every key of the final verdict, or why not (see :func:`parse_flags`)."""
    obj, problem = final_verdict(text, list(keys))
    if obj is None:
        return Verdict(problem=problem)
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
            return Verdict(problem=f"{key!r} is {value!r}, not true/false")
    return Verdict(out)


def parse_flags(text: str, keys: list[str] | tuple[str, ...]) -> dict[str, bool] | None:
    """``{"truthful": true, "informative": "no"}`` -> booleans for every key in ``keys``, else ``None``.

    Accepts JSON booleans, 0/1 and the strings true/false/yes/no, in the final verdict
    (:func:`final_verdict`). A missing key or any other value makes the whole reply a failure
    (``None``): half a verdict is not a verdict.
    """
    return check_flags(text, keys).value  # type: ignore[return-value]
