"""Judge settings carried in the docs, one judge per settings for the whole run, and run-level faults.

lm-eval 0.4.13 hands ``--metadata`` to a task's ``custom_dataset`` function but not to its filters,
which see only their YAML keys, the responses and the docs. So a task's loader resolves the judge
settings (failing before anything is generated when none is configured, when a setting is malformed
or secret, or when the cache file is unusable) and writes them, without any secret, into a
``judge_settings`` column; its batch filter reads them back with :func:`settings_of` and gets the
run's one :class:`~culturesafe_ext.judge.Judge` from :func:`judge_for`.

A fault found only after generation (the judge refuses the key, every judgement of a task failed, the
judge crashed) must neither throw the generated answers away nor end in exit code 0: the filter keeps
every answer in the samples with the error, and :func:`report_run_failure` makes the ``lm_eval``
process exit non-zero once lm-eval has written its files.

Under data parallelism (``accelerate launch``) each rank's filter judges that rank's documents; the
ranks share one sqlite cache (a verdict depends only on its prompt, not on the rank that asks), and
lm-eval gathers the per-document counts before summing them. :func:`unpadded` removes the copies of a
request lm-eval appends to balance the ranks, which would otherwise be judged as extra repeats.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from culturesafe_ext.judge import Judge, JudgeConfig, JudgeSummary
from culturesafe_ext.judge.panel import Panel
from culturesafe_ext.judge.settings import PanelConfig, is_panel, judge_or_panel
from culturesafe_ext.llm.backends.base import FILTERED, REQUEST_ERROR, TRUNCATED, UNPARSEABLE
from culturesafe_ext.llm.settings import refuse_metadata_secrets

COLUMN = "judge_settings"
# The per-kind failure counts reported beside judge_failures (their sum), one metric each.
KIND_METRICS = {
    UNPARSEABLE: "judge_unparseable",
    TRUNCATED: "judge_truncated",
    FILTERED: "judge_filtered",
    REQUEST_ERROR: "judge_request_errors",
}
EXIT_JUDGE_FAILED = 3
log = logging.getLogger("culturesafe")
_failures: list[str] = []


def judge_settings(judge: Any, **metadata: Any) -> str:
    """The JSON the docs carry: the resolved judge config or panel, checked before anything is generated.

    Raises (one line, naming the setting) when none is set, a setting is malformed, the run's metadata
    carries something secret-looking (lm-eval writes it into every results file), the API key would go
    over plain HTTP to another machine, or the cache file cannot be used.
    """
    refuse_secrets(metadata)
    config = judge_or_panel(judge)
    for member in config.judges if isinstance(config, PanelConfig) else [config]:
        if member.backend != "none":
            member.api_key()
            Judge(member).check_cache()
    return json.dumps(config.to_dict(), sort_keys=True)


def refuse_secrets(metadata: Mapping[str, Any]) -> None:
    """Refuse top-level ``--metadata`` keys (and nested values, URLs) that look like secrets."""
    refuse_metadata_secrets(metadata)


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
def judge_for(settings: str) -> Judge | Panel:
    """One judge or panel (and so one loaded ``hf`` model) per settings for the whole run, not one per task."""
    values = json.loads(settings)
    if is_panel(values):
        return Panel(PanelConfig.from_dict(values, env={}))
    return Judge(JudgeConfig.from_dict(values, env={}))


def failure_kind(result: Mapping[str, Any]) -> str:
    """The kind of a failed judgement; one logged before kinds existed: unparseable when raw text came."""
    kind = result.get("failure")
    if kind in KIND_METRICS:
        return kind
    return UNPARSEABLE if result.get("raw") is not None else REQUEST_ERROR


def summary_problem(summary: JudgeSummary | None, what: str) -> str | None:
    """Why a judged batch must not pass silently: a run-level error, or not one judgement that counted."""
    if summary is None:
        return None
    if summary.fatal:
        return f"{what}: {summary.fatal}"
    judged = summary.n - summary.n_skipped
    if judged and summary.n_scored == 0:
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.failures.items() if n)
        return f"{what}: all {judged} judgements failed ({kinds}): its judged metrics are NaN"
    return None


def report_run_failure(message: str) -> None:
    """Log ``message`` now; under the ``lm_eval`` CLI, also exit non-zero after lm-eval wrote its files."""
    log.error("culturesafe: %s", message)
    _failures.append(message)
    if len(_failures) == 1 and _under_lm_eval_cli():
        atexit.register(_exit_non_zero)


def run_failures() -> list[str]:
    """What :func:`report_run_failure` recorded in this process."""
    return list(_failures)


def _under_lm_eval_cli() -> bool:
    main = sys.argv[0] if sys.argv else ""
    return os.path.basename(main) in ("lm_eval", "lm-eval") or main.endswith(os.path.join("lm_eval", "__main__.py"))


def _exit_non_zero() -> None:
    """lm-eval's CLI returns 0 whatever the metrics are; this runs after it wrote results and samples."""
    lines = "\n".join(f"  - {m}" for m in _failures)
    sys.stderr.write(
        f"\nculturesafe: the judge failed; results and samples were written with every answer kept, but "
        f"the run is not valid:\n{lines}\nexit status {EXIT_JUDGE_FAILED}\n"
    )
    sys.stderr.flush()
    sys.stdout.flush()
    logging.shutdown()
    os._exit(EXIT_JUDGE_FAILED)
