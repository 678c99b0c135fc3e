"""culturesafe: cultural safety and knowledge benchmarks as an lm-evaluation-harness plugin.

Kept import-free on purpose: the start-up hook in ``culturesafe.pth`` imports this package at every
Python start-up, so nothing heavy (lm-eval, torch, datasets) may be imported here.
"""

import os as _os

__version__ = "0.1.0"

# The wheel maps the checkout's top-level builders/ and lm_eval_tasks/ to culturesafe_ext.builders and
# culturesafe_ext.lm_eval_tasks (pyproject's force-include). Run from a checkout (an editable install), the
# same names resolve to those folders: the checkout root is searched for this package's sub-packages too,
# so the lm_eval.tasks entry point names a package whose folder holds the task YAMLs in both layouts.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "pyproject.toml")) and _os.path.isfile(
    _os.path.join(_checkout, "lm_eval_tasks", "__init__.py")
):
    __path__.append(_checkout)  # noqa: F821 - a package's __path__
