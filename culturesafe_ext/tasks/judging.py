"""Judge settings carried in the docs, and one judge per settings for the whole run.

lm-eval 0.4.13 hands ``--metadata`` to a task's ``custom_dataset`` function but not to its filters,
which see only their YAML keys, the responses and the docs. So a task's loader resolves the judge
settings (failing before anything is generated when none is configured) and writes them, without any
secret, into a ``judge_settings`` column; its batch filter reads them back with :func:`settings_of`
and gets the run's one :class:`~culturesafe_ext.judge.Judge` from :func:`judge_for`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from culturesafe_ext.judge import Judge, JudgeConfig
from culturesafe_ext.judge.config import PanelConfig, is_panel, judge_or_panel
from culturesafe_ext.judge.panel import Panel

COLUMN = "judge_settings"


def judge_settings(judge: Any) -> str:
    """The JSON the docs carry: the resolved judge config or panel (raises with instructions when none is set)."""
    config = judge_or_panel(judge)
    return json.dumps(config.to_dict(), sort_keys=True)


def settings_of(docs: list[dict], column: str = COLUMN) -> str:
    """The one settings value of a task's docs (a task is judged by one judge)."""
    settings = {d[column] for d in docs}
    if len(settings) != 1:
        raise ValueError(f"the docs of one task carry different {column}")
    return settings.pop()


@lru_cache(maxsize=4)
def judge_for(settings: str) -> Judge | Panel:
    """One judge or panel (and so one loaded ``hf`` model) per settings for the whole run, not one per task."""
    values = json.loads(settings)
    if is_panel(values):
        return Panel(PanelConfig.from_dict(values, env={}))
    return Judge(JudgeConfig.from_dict(values, env={}))
