"""The project's one parser for the JSON objects that models and judges are asked to return.

Models are told to answer ``{"answer": "B"}`` and judges ``{"score": 7}``; real outputs wrap that in
code fences, prose or trailing text. :func:`find_json_object` is the single place that digs the
object out; callers decide what a valid value is and count everything else as a failure.
"""

from __future__ import annotations

import json
import re

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


def parse_choice_letter(text: str, letters: list[str]) -> str | None:
    """The letter a model chose, or ``None`` when it did not choose exactly one valid letter.

    Accepts ``{"answer": "B"}`` (also fenced) and, failing JSON, a reply that is only the letter
    (``B``, ``B.``, ``(B)``). "B/C", "A or B", an unknown letter or a missing key are all invalid:
    unlike the upstream scorer, a letter merely occurring in the answer is not a hit.
    """
    valid = {letter.upper() for letter in letters}
    obj = find_json_object(text)
    if obj is not None:
        value = obj.get("answer")
        if not isinstance(value, str):
            return None
        value = value.strip().strip("().").strip().upper()
        return value if value in valid else None
    bare = re.fullmatch(r"\s*\(?([A-Za-z])\)?\.?\s*", text or "")
    if bare and bare.group(1).upper() in valid:
        return bare.group(1).upper()
    return None
