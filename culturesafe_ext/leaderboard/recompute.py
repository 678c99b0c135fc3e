"""Re-deriving a run's numbers: our task code found by the source lm-eval logged, and values compared.

lm-eval logs each hook's source text in ``configs``; :func:`resolve` finds the installed function with
exactly that text, so a submission is recomputed with the code that produced it (or refused).
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import re
from functools import lru_cache
from typing import Any

TOLERANCE = 1e-9
_DEF = re.compile(r"\s*def\s+(\w+)\s*\(")


@lru_cache(maxsize=1)
def _functions() -> dict[str, list[Any]]:
    """name -> functions of that name in culturesafe_ext.tasks.* (where every YAML hook lives)."""
    import culturesafe_ext.tasks as tasks_pkg

    found: dict[str, list[Any]] = {}
    for info in pkgutil.iter_modules(tasks_pkg.__path__):
        module = importlib.import_module(f"culturesafe_ext.tasks.{info.name}")
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                found.setdefault(name, []).append(fn)
    return found


def resolve(source: str) -> Any | None:
    """The installed function whose source is exactly ``source`` (as lm-eval logs it), else None."""
    match = _DEF.match(source or "")
    if not match:
        return None
    for fn in _functions().get(match[1], []):
        if inspect.getsource(fn).strip() == source.strip():
            return fn
    return None


def aggregator(spec: str):
    """The aggregation a logged metric spec names: lm-eval's ``mean`` or one of our functions."""
    if spec == "mean":
        from lm_eval.api.metrics import mean

        return mean
    return resolve(spec)


def plain(value: Any) -> Any:
    """Tuples as lists, as they read back from JSON."""
    return json.loads(json.dumps(value))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b


def near(a: Any, b: Any, tolerance: float) -> bool:
    """Equal as numbers (None as NaN), or within ``tolerance``."""
    x, y = number(a), number(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return same(x, y) or abs(x - y) <= tolerance


def number(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def as_results(filtered: list) -> list:
    """Logged filtered responses back into what ``process_results`` received: loglikelihood pairs as (float, bool)."""
    out = []
    for item in filtered:
        if (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(x, str) for x in item)
            and item[1] in ("True", "False")
        ):
            try:
                out.append((float(item[0]), item[1] == "True"))
                continue
            except ValueError:
                pass
        out.append(item)
    return out


def doc_hash(doc: dict) -> str:
    """lm-eval's ``doc_hash`` of a logged document."""
    from lm_eval.utils import handle_non_serializable, hash_string

    return hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))
