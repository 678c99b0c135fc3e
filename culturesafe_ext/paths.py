"""Where culturesafe keeps derived files (built sample, converted demo model, judge cache).

Its own tiny module so that anything needing the path (the judge, the loader) imports nothing heavy.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CULTURESAFE_CACHE_DIR"


def cache_dir() -> Path:
    """``$CULTURESAFE_CACHE_DIR``, else ``$XDG_CACHE_HOME/culturesafe``, else ``~/.cache/culturesafe``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "culturesafe"
    )
    return Path(root)
