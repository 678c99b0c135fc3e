"""Start-up hook run from ``culturesafe.pth``: installs a lazy import watcher and nothing else.

Cost at Python start-up is one tiny module and one entry in ``sys.meta_path``. The real work
(:mod:`culturesafe_ext.plugin`) runs only when lm-eval itself imports the modules we extend.
"""

import sys
from importlib.machinery import PathFinder

# Duck-typed finder and loader on purpose: subclassing importlib.abc would import importlib.resources,
# pathlib, re, tempfile... (~25 ms) at every Python start-up.

# lm-eval module -> name of the function in culturesafe_ext.plugin that extends it once it has loaded.
_WATCHED = {
    "lm_eval.tasks._index": "extend_task_index",
    "lm_eval.models": "register_models",
}


class _AfterLoad:
    """Wraps the real loader: executes the module, then hands it to our extension function."""

    def __init__(self, loader, hook_name: str) -> None:
        self._loader = loader
        self._hook_name = hook_name

    def create_module(self, spec):  # noqa: D102 - delegate
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: D102 - delegate, then extend
        self._loader.exec_module(module)
        from culturesafe_ext import plugin

        getattr(plugin, self._hook_name)(module)


class _Watcher:
    """Finds nothing itself; for the watched names it wraps the spec the other finders return."""

    def find_spec(self, fullname, path, target=None):
        hook_name = _WATCHED.get(fullname)
        if hook_name is None:
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _AfterLoad(spec.loader, hook_name)
        return spec


def install() -> None:
    """Put the watcher first on ``sys.meta_path`` once (idempotent)."""
    if not any(isinstance(f, _Watcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _Watcher())


install()
