"""How culturesafe plugs into lm-eval: its task folder and its model names, in one place.

lm-eval 0.4.13 has no plugin discovery for tasks, so :mod:`culturesafe_ext._startup` calls
:func:`extend_task_index` when ``lm_eval.tasks._index`` loads and :func:`register_models` when
``lm_eval.models`` loads. Both lean on lm-eval internals: they check the version and the shape of
what they patch, and on a mismatch log a warning that names ``--include_path`` instead of failing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("culturesafe")

# The lm-eval releases whose internals the start-up hook was checked against: [low, high).
TESTED_LM_EVAL = ((0, 4, 13), (0, 5, 0))

# lm-eval model name -> "module:Class"; registered lazily, exactly like lm-eval's own MODEL_MAPPING.
# Keep in sync with [project.entry-points."lm_eval.models"] in pyproject.toml.
MODEL_PLUGINS: dict[str, str] = {
    "hf-grounded": "culturesafe_ext.models.grounded:GroundedHFLM",
    "hf-probe": "culturesafe_ext.models.probe:ProbeHFLM",
    "hf-router": "culturesafe_ext.models.router:HFRouterLM",
    "served-router": "culturesafe_ext.models.served_router:ServedRouterLM",
}

DISABLE_ENV = "CULTURESAFE_NO_PLUGIN"


def tasks_dir() -> Path:
    """The folder holding our task YAMLs: inside the installed wheel, or the source checkout's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "lm_eval_tasks", here.parent / "lm_eval_tasks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"culturesafe task folder not found next to {here}")


def _lm_eval_version() -> tuple[int, ...] | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        raw = version("lm_eval")
    except PackageNotFoundError:
        return None
    parts = []
    for piece in raw.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _fallback_hint() -> str:
    try:
        where = str(tasks_dir())
    except FileNotFoundError:
        where = "<site-packages>/culturesafe_ext/lm_eval_tasks"
    return f"run lm_eval with --include_path {where} to use the culturesafe tasks"


def untested_lm_eval() -> tuple[str, str, str] | None:
    """(found, low, high) version strings when the installed lm-eval is outside :data:`TESTED_LM_EVAL`, else None.

    The one version check behind both warnings: the task hook's here and the model wrappers' in
    :func:`culturesafe_ext.lm_eval_internals.check_version`."""
    found = _lm_eval_version()
    low, high = TESTED_LM_EVAL
    if found is not None and low <= found < high:
        return None
    return ".".join(map(str, found or ())) or "(unknown)", ".".join(map(str, low)), ".".join(map(str, high))


def _warn_if_untested() -> None:
    untested = untested_lm_eval()
    if untested is not None:
        log.warning(
            "culturesafe: lm-eval %s is outside the versions its task hook was checked against "
            "(%s to before %s); trying anyway. If our tasks are missing, %s.",
            *untested,
            _fallback_hint(),
        )


def extend_task_index(index_module) -> None:
    """Make ``TaskIndex.build`` also index our folder, right after lm-eval's built-in tasks.

    Precedence matches lm-eval's own plan for task plugins: built-ins, then plugins, then
    ``--include_path`` (a user's folder still wins over ours).
    """
    if os.environ.get(DISABLE_ENV):
        return
    task_index = getattr(index_module, "TaskIndex", None)
    original = getattr(task_index, "build", None)
    if original is None or getattr(original, "_culturesafe", False):
        if original is None:
            log.warning("culturesafe: lm-eval has no TaskIndex.build; %s.", _fallback_hint())
        return
    _warn_if_untested()
    ours = tasks_dir()
    builtin = Path(index_module.__file__).resolve().parent

    def build(paths, *args, **kwargs):
        paths = [Path(p) for p in paths]
        resolved = [p.resolve() for p in paths]
        if ours.resolve() not in resolved and builtin in resolved:
            paths.insert(resolved.index(builtin) + 1, ours)
        return original(paths, *args, **kwargs)

    build._culturesafe = True  # type: ignore[attr-defined]
    task_index.build = staticmethod(build)


def register_models(models_module) -> None:
    """Register our model names as lazy placeholders once lm-eval has registered its own.

    Doing it earlier would make lm-eval's registry look non-empty and hide all built-in models.
    """
    if os.environ.get(DISABLE_ENV) or not MODEL_PLUGINS:
        return
    try:
        from lm_eval.api.registry import model_registry
    except ImportError:
        log.warning("culturesafe: lm-eval has no model_registry; our models are unavailable.")
        return
    for name, target in MODEL_PLUGINS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)
