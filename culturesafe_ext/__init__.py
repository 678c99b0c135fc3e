"""culturesafe: cultural safety and knowledge benchmarks as an lm-evaluation-harness plugin.

Kept import-free on purpose: the start-up hook in ``culturesafe.pth`` imports this package at every
Python start-up, so nothing heavy (lm-eval, torch, datasets) may be imported here.
"""

__version__ = "0.1.0"
