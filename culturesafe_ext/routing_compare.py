"""Deprecated location: the routing comparison moved to :mod:`culturesafe_ext.analysis.routing_compare`.

Kept for one release so ``python -m culturesafe_ext.routing_compare`` and old imports still work; use
``culturesafe analyze routing`` instead.
"""

from __future__ import annotations

import warnings

from culturesafe_ext.analysis.routing_compare import *  # noqa: F403
from culturesafe_ext.analysis.routing_compare import FORMAT, combine, compare, main, model_args_of, run_entry  # noqa: F401

warnings.warn(
    "culturesafe_ext.routing_compare moved to culturesafe_ext.analysis.routing_compare "
    "(command: `culturesafe analyze routing`); the old path goes away in the next release",
    DeprecationWarning,
    stacklevel=2,
)

if __name__ == "__main__":
    raise SystemExit(main())
