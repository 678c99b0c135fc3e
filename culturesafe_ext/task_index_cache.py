"""lm-eval's index of its own task folder, kept on disk between runs.

Every ``lm_eval`` process indexes the ~14,000 YAML files under ``lm_eval/tasks`` before it reads its first
task name: 6.5 s of CPU on a 2-core machine, twice what importing torch and lm-eval costs (profiled, compiled
bytecode, idle). Those files change only when lm-eval is upgraded, so the part of ``TaskIndex.build`` that
covers that folder is pickled under the cache dir, keyed by every YAML file's path, size and modification time,
the build's arguments and the lm-eval and Python versions: any change builds it anew. The other folders (ours,
``--include_path``) are indexed as lm-eval does, every time, and merged the way ``TaskIndex.build`` merges them.
``CULTURESAFE_NO_INDEX_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from culturesafe_ext.paths import cache_dir

log = logging.getLogger("culturesafe")
OFF_ENV = "CULTURESAFE_NO_INDEX_CACHE"
FOLDER = "lm_eval_task_index"


def fingerprint(root: Path, settings: str) -> str:
    """A hash of ``settings`` and of every YAML file under ``root``: relative path, size, mtime (ns)."""
    digest = hashlib.sha256(settings.encode())
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".yaml"):
                path = os.path.join(dirpath, name)
                stat = os.stat(path)
                digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _lm_eval_version() -> str:
    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "unknown"


def cached_index(build: Callable[..., dict], root: Path, *args: Any, **kwargs: Any) -> dict:
    """``build([root], *args, **kwargs)``, read from the cache when nothing under ``root`` changed."""
    if os.environ.get(OFF_ENV):
        return build([root], *args, **kwargs)
    settings = repr((str(root.resolve()), args, sorted(kwargs.items()), _lm_eval_version(), sys.version))
    path = cache_dir() / FOLDER / f"{fingerprint(root, settings)}.pickle"
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        pass
    except Exception as err:  # noqa: BLE001 - a damaged or foreign file: build anew and replace it
        log.debug("culturesafe: task index cache %s unreadable (%s): building it again", path, err)
    index = build([root], *args, **kwargs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        with partial.open("wb") as f:
            pickle.dump(index, f, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)  # atomic: processes building it at once each write a whole file
    except Exception as err:  # noqa: BLE001 - a read-only cache dir only costs the next run the build
        log.debug("culturesafe: task index not cached at %s (%s)", path, err)
    return index


def build_index(build: Callable[..., dict], paths: list[Path], builtin: Path, *args: Any, **kwargs: Any) -> dict:
    """``build(paths, ...)`` with lm-eval's own folder, when it comes first, taken from :func:`cached_index`.

    The same dict in the same order: later folders' entries replace earlier ones with lm-eval's warning."""
    if not paths or paths[0].resolve() != builtin:
        return build(paths, *args, **kwargs)
    index = dict(cached_index(build, paths[0], *args, **kwargs))
    later = build(paths[1:], *args, **kwargs) if len(paths) > 1 else {}
    lm_eval_log = logging.getLogger(getattr(build, "__module__", None) or "lm_eval.tasks._index")
    for name, entry in later.items():
        if name in index:
            lm_eval_log.warning(
                "Task '%s' from %s overrides existing task from %s", name, entry.yaml_path, index[name].yaml_path
            )
        index[name] = entry
    return index
