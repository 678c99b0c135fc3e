"""``culturesafe synthesize``: search-grounded, task-aware training data (CultureManager's first two parts).

Per target task and culture: the LLM writes search queries (task-specific, from the task's description and
example docs; task-agnostic, about the culture's norms), the sources package retrieves passages with
provenance, the LLM writes docs in the task's own schema grounded in each passage (an evidence span that must
occur in it), every doc is rendered by the task's own lm-eval functions, near-duplicates and docs that leak
evaluation items are removed (each listed with its twin), and a Hub-layout dataset plus rendered
``(prompt, completion, culture, kind, provenance)`` items are written for ``culturesafe train ... --items``.
"""
