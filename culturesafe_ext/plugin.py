"""How culturesafe plugs into lm-eval: its task folder and its model names, in one place.

Both are declared once, as entry points in ``pyproject.toml``: ``lm_eval.tasks`` names the package whose
folder holds our task YAMLs (``culturesafe_ext.lm_eval_tasks``, the way EleutherAI/lm-evaluation-harness#4015
resolves it: the package's folder, scanned recursively) and ``lm_eval.models`` names each model class
(read back here with :func:`model_plugins`, the way #4013 reads them). lm-eval 0.4.13 reads neither, so
:mod:`culturesafe_ext._startup` calls :func:`extend_task_index` when ``lm_eval.tasks._index`` loads and
:func:`register_models` when ``lm_eval.models`` loads; each stands down when the installed lm-eval
discovers that kind of plugin itself. Both lean on lm-eval internals: they check the version and the
shape of what they patch, and on a mismatch log a warning that names ``--include_path`` instead of failing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path

from packaging.version import InvalidVersion, Version

from culturesafe_ext.task_index_cache import build_index

log = logging.getLogger("culturesafe")

DISTRIBUTION = "culturesafe"
TASKS_PACKAGE = "culturesafe_ext.lm_eval_tasks"  # the [project.entry-points."lm_eval.tasks"] target
# The lm-eval releases whose internals the start-up hook was checked against: [low, high).
TESTED_LM_EVAL = (Version("0.4.13"), Version("0.5.0"))

DISABLE_ENV = "CULTURESAFE_NO_PLUGIN"


def tasks_dir() -> Path:
    """The folder holding our task YAMLs: inside the installed wheel, or the source checkout's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "lm_eval_tasks", here.parent / "lm_eval_tasks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"culturesafe task folder not found next to {here}")


def model_plugins() -> dict[str, str]:
    """lm-eval model name -> ``"module:Class"``, from our own ``lm_eval.models`` entry points."""
    return {
        ep.name: ep.value
        for ep in entry_points(group="lm_eval.models")
        if ep.dist is not None and ep.dist.name == DISTRIBUTION
    }


def _lm_eval_version() -> Version | None:
    try:
        return Version(version("lm_eval"))
    except (PackageNotFoundError, InvalidVersion):
        return None


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
    return str(found) if found is not None else "(unknown)", str(low), str(high)


def _warn_if_untested() -> None:
    untested = untested_lm_eval()
    if untested is not None:
        log.warning(
            "culturesafe: lm-eval %s is outside the versions its task hook was checked against "
            "(%s to before %s); trying anyway. If our tasks are missing, %s.",
            *untested,
            _fallback_hint(),
        )


def _entry_point_dir() -> Path | None:
    """The folder lm-eval's own discovery gives our ``lm_eval.tasks`` entry point: its package's folder."""
    try:
        spec = importlib.util.find_spec(TASKS_PACKAGE)
    except ModuleNotFoundError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]).resolve() if locations else None


def lm_eval_discovers_tasks() -> bool:
    """Whether the running lm-eval indexes ``lm_eval.tasks`` entry points itself (#4015's
    ``discover_plugin_task_paths`` in ``lm_eval.tasks.manager``) and ours resolves to our task folder."""
    manager = sys.modules.get("lm_eval.tasks.manager")
    if manager is None or not hasattr(manager, "discover_plugin_task_paths"):
        return False
    return _entry_point_dir() == tasks_dir().resolve()


def lm_eval_discovers_models(registry_module) -> bool:
    """Whether lm-eval registers ``lm_eval.models`` entry points itself (#4013's ``load_plugins``)."""
    return callable(getattr(registry_module, "load_plugins", None))


def extend_task_index(index_module) -> None:
    """Make ``TaskIndex.build`` also index our folder, right after lm-eval's built-in tasks (whose index it
    reads from :mod:`culturesafe_ext.task_index_cache` when their files did not change).

    Precedence matches lm-eval's own for task plugins: built-ins, then plugins, then ``--include_path``
    (a user's folder still wins over ours). Checked at each build: where lm-eval finds our entry point
    itself, the wrapper adds nothing, so no task is indexed twice.
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
        if lm_eval_discovers_tasks():
            return original(paths, *args, **kwargs)
        paths = [Path(p) for p in paths]
        resolved = [p.resolve() for p in paths]
        if ours.resolve() not in resolved and builtin in resolved:
            paths.insert(resolved.index(builtin) + 1, ours)
        return build_index(original, paths, builtin, *args, **kwargs)

    build._culturesafe = True  # type: ignore[attr-defined]
    build.__wrapped__ = original  # type: ignore[attr-defined]
    task_index.build = staticmethod(build)


def register_models(models_module) -> None:
    """Register our model names as lazy placeholders once lm-eval has registered its own.

    Doing it earlier would make lm-eval's registry look non-empty and hide all built-in models. Where
    lm-eval reads the ``lm_eval.models`` entry points itself, it registers them and this does nothing.
    """
    if os.environ.get(DISABLE_ENV):
        return
    try:
        from lm_eval.api import registry
    except ImportError:
        log.warning("culturesafe: lm-eval has no model registry; our models are unavailable.")
        return
    if lm_eval_discovers_models(registry):
        return
    for name, target in model_plugins().items():
        if name not in registry.model_registry:
            registry.model_registry.register(name, target=target)
