"""Few-shot examples that never show an item its own answer: lm-eval's sampler, grouped by source.

Why: the tasks evaluate one split, so lm-eval's default sampler draws examples from the evaluated
docs and only removes the doc itself. An AdaCultureSafe description has five MCQs (and five safety
queries) written from the same text, and CircularEval repeats every question once per rotation, so
the default draw shows a prompt its own question's answer or a sibling written from the same
custom. This sampler draws only from other groups: other descriptions (``description_id``), other
near-duplicate clusters for CulturaX (``cluster_id``), never the same question (``id``).

Deterministic: the examples of a doc depend only on lm-eval's few-shot seed (``--seed``, fourth value)
and the doc's id, not on ``--limit`` or on the order docs are visited. Named in the YAMLs as
``fewshot_config: {sampler: !function culturesafe_ext.tasks.fewshot.OtherDescriptionSampler}``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from lm_eval.api.samplers import ContextSampler

GROUP_KEYS = ("description_id", "cluster_id")
DEFAULT_SEED = 1234  # lm-eval's default few-shot seed


def group_of(doc: dict[str, Any]) -> str:
    """The unit an example must not share with the evaluated doc: its description, else its cluster, else its id."""
    for key in GROUP_KEYS:
        if doc.get(key):
            return f"{key}={doc[key]}"
    return f"id={doc.get('id')}"


class OtherDescriptionSampler(ContextSampler):
    """Draws ``n`` distinct questions from groups other than the evaluated doc's; refuses when too few exist."""

    def __init__(self, df: Sequence[dict[str, Any]] | None = None, *, rnd: int | None = None, **kwargs: Any) -> None:
        super().__init__(df, rnd=rnd, **kwargs)
        self.seed = DEFAULT_SEED if rnd is None else rnd
        self._index: tuple[list[dict[str, Any]], int, dict[str, set[str]]] | None = None

    def replace_df(self, df: Sequence[dict[str, Any]]) -> OtherDescriptionSampler:
        self._index = None
        return super().replace_df(df)

    def _pool(self) -> tuple[list[dict[str, Any]], int, dict[str, set[str]]]:
        """The pool, its number of distinct questions and the question ids of each group (built once)."""
        if self._index is None:
            pool = list(self.fewshot_docs())
            ids_by_group: dict[str, set[str]] = {}
            for i, doc in enumerate(pool):
                ids_by_group.setdefault(group_of(doc), set()).add(str(doc.get("id", i)))
            self._index = (pool, len({str(d.get("id", i)) for i, d in enumerate(pool)}), ids_by_group)
        return self._index

    def set_rnd(self, rnd: int | None) -> OtherDescriptionSampler:
        self.seed = DEFAULT_SEED if rnd is None else rnd
        return super().set_rnd(rnd)

    def sample(
        self, n: int, eval_doc: dict[str, Any] | None = None, df: Sequence[dict[str, Any]] | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        if df:
            self.replace_df(df)
        pool, n_ids, ids_by_group = self._pool()
        if eval_doc is None:  # a pool that is not the evaluated split: nothing of the doc can be in it
            key, excluded = "pool", ""
        else:
            key, excluded = str(eval_doc.get("id", eval_doc)), group_of(eval_doc)
        eligible = n_ids - len(ids_by_group.get(excluded, ()))
        if eligible < n:
            raise ValueError(
                f"--num_fewshot {n}: only {eligible} question(s) in this task come from other descriptions "
                f"than {excluded or 'the evaluated one'}; use fewer shots or a config with more descriptions"
            )
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        rnd = random.Random(int.from_bytes(digest[:8], "big"))
        chosen: list[dict[str, Any]] = []
        seen: set[str] = set()
        while len(chosen) < n:
            doc = pool[rnd.randrange(len(pool))]
            doc_id = str(doc.get("id", ""))
            if doc_id in seen or group_of(doc) == excluded:
                continue
            seen.add(doc_id)
            chosen.append(doc)
        return chosen
