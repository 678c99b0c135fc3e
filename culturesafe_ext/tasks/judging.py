"""Judge settings carried in the docs, and one judge per settings for the whole run.

lm-eval 0.4.13 hands ``--metadata`` to a task's ``custom_dataset`` function but not to its filters,
which see only their YAML keys, the responses and the docs. So a task's loader resolves the judge
settings (failing before anything is generated when none is configured) and writes them, without any
secret, into a ``judge_settings`` column; its batch filter reads them back with :func:`settings_of`
and gets the run's one :class:`~culturesafe_ext.judge.Judge` from :func:`judge_for`.

Under data parallelism (``accelerate launch``) each rank's filter judges that rank's documents; the
ranks share one sqlite cache (a verdict depends only on its prompt, not on the rank that asks), and
lm-eval gathers the per-document counts before summing them. :func:`unpadded` removes the copies of a
request lm-eval appends to balance the ranks, which would otherwise be judged as extra repeats.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from culturesafe_ext.judge import Judge, JudgeConfig

COLUMN = "judge_settings"


def judge_settings(judge: Any) -> str:
    """The JSON the docs carry: the resolved judge config (raises with instructions when none is set)."""
    config = JudgeConfig.from_metadata({"judge": judge})
    return json.dumps(config.to_dict(), sort_keys=True)


def settings_of(docs: list[dict], column: str = COLUMN) -> str:
    """The one settings value of a task's docs (a task is judged by one judge)."""
    settings = {d[column] for d in docs}
    if len(settings) != 1:
        raise ValueError(f"the docs of one task carry different {column}")
    return settings.pop()


def unpadded(resps: list[list], repeats: int | None = None, task: str = "") -> list[list]:
    """Each instance's responses without lm-eval's data-parallel padding.

    lm-eval 0.4.13 evens out the ranks' request counts by sending a rank's last request again
    (``repeats`` more times per missing request) and appends those answers to that same instance, so one
    document would carry more "repeats" than the task asked for. ``repeats`` comes from the filter's YAML
    (exact); without it, the task's shortest response list on this rank is taken (the padding only ever
    lengthens one instance).
    """
    if not resps:
        return resps
    want = int(repeats) if repeats else min(len(r) for r in resps)
    short = [i for i, r in enumerate(resps) if len(r) < want]
    if short:
        raise ValueError(
            f"{task or 'a judged task'}: instance {short[0]} has {len(resps[short[0]])} responses, "
            f"fewer than its {want} repeats"
        )
    return [list(r[:want]) for r in resps]


@lru_cache(maxsize=4)
def judge_for(settings: str) -> Judge:
    """One judge (and so one loaded ``hf`` model) per settings for the whole run, not one per task."""
    return Judge(JudgeConfig.from_dict(json.loads(settings), env={}))
